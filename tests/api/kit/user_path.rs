//! The user-path table: each README setting's example value, the start that
//! sets it and what that start checks (`settings_user_path.rs` holds the
//! rule, `settings_user_path_starts.rs` the starts).

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::helpers::{JWT_SECRET, MASTER_KEY};
use crate::kit::binary::command;
use Check::{Effect, Starts};
use Example::{Is, Made};
use Start::{Catalog, Cli, Embedded};

/// Which start sets a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// `serve` on a new catalog database of the test cluster.
    Catalog,
    /// `tenant-plane token`, with the `Catalog` settings and these.
    Cli,
    /// `serve` with the embedded PostgreSQL, and a `--config` TOML file.
    Embedded,
}

/// A valid example value: as written, or made from the start's resources.
pub enum Example {
    Is(&'static str),
    Made(fn(&Resources) -> String),
}

/// What shows the binary took the setting.
pub enum Check {
    /// It reached its banner with the setting, and stopped cleanly.
    Starts,
    /// That, and this effect, which the start asserts.
    Effect(&'static str),
}

/// Webhook signing secret of the `Catalog` start.
pub const WEBHOOK_SECRET: &str = "user-path-webhook-secret";
/// `/metrics` bearer of the `Catalog` start.
pub const METRICS_TOKEN: &str = "user-path-metrics-token-0123";
pub const ISSUER: &str = "https://issuer.example";
pub const AUDIENCE: &str = "tenant-plane-user-path";
/// The `kid` of the EdDSA key in the JWKS and the private-key folder.
pub const KID: &str = "user-path-ed25519";

const RESTORED: &str = "a backup taken over the API lands in the bucket of a real S3 server";
const WEBHOOKS: &str = "the receiver gets tenant.created, signed with the secret";
pub const GATEWAY: &str =
    "a tenant's key logs in there over TLS (the CA's certificate) and runs SQL";
const TOKENS: &str = "a token without iss and aud gets 401; `token`'s carry them and pass";

/// Every variable of the README's configuration table: (variable, start,
/// example value, check).
#[rustfmt::skip]
pub const SETTINGS: &[(&str, Start, Example, Check)] = &[
    ("TENANT_PLANE_DATABASE_URL", Catalog, Made(|r| r.catalog_url.clone()), Effect("the tenant created is in that database")),
    ("TENANT_PLANE_LISTEN", Catalog, Made(|r| r.listen.clone()), Effect("the banner and /healthz are on that address")),
    ("TENANT_PLANE_JWT_SECRET", Catalog, Is(JWT_SECRET), Effect("an HS256 token `token` signs with it is accepted")),
    ("TENANT_PLANE_JWT_PUBLIC_KEYS", Catalog, Made(|r| r.path("jwks.json")), Effect("a token signed by its EdDSA key is accepted")),
    ("TENANT_PLANE_JWT_PRIVATE_KEYS", Cli, Made(|r| r.path("keys")), Effect("`token` signs with the EdDSA key it holds")),
    ("TENANT_PLANE_JWT_ISSUER", Catalog, Is(ISSUER), Effect(TOKENS)),
    ("TENANT_PLANE_JWT_AUDIENCE", Catalog, Is(AUDIENCE), Effect(TOKENS)),
    ("TENANT_PLANE_DATA_DIR", Embedded, Made(|r| r.path("data")), Effect("the generated token secret is kept under it")),
    ("TENANT_PLANE_EMBEDDED_FALLBACK_DIR", Embedded, Made(|r| r.fallback.path().display().to_string()), Effect("as root, the cluster lives there (the data directory is closed)")),
    ("TENANT_PLANE_MASTER_KEY", Catalog, Is(MASTER_KEY), Starts),
    ("TENANT_PLANE_MASTER_KEY_FILE", Embedded, Made(|r| r.path("master.key")), Effect("no master key is generated in the data directory")),
    ("TENANT_PLANE_LOG_FORMAT", Catalog, Is("json"), Effect("every log line is a JSON object")),
    ("TENANT_PLANE_TENANTS_RETENTION_DAYS", Catalog, Is("14"), Starts),
    ("TENANT_PLANE_BACKUP_LOCATION", Catalog, Made(|_| format!("s3://{}/user-path", crate::kit::s3::BUCKET)), Effect(RESTORED)),
    ("TENANT_PLANE_BACKUP_S3_ENDPOINT", Catalog, Made(|r| r.s3.endpoint.clone()), Effect(RESTORED)),
    ("TENANT_PLANE_BACKUP_S3_REGION", Catalog, Is("us-east-1"), Effect(RESTORED)),
    ("TENANT_PLANE_BACKUP_S3_ACCESS_KEY_ID", Catalog, Is(crate::kit::s3::ACCESS_KEY), Effect(RESTORED)),
    ("TENANT_PLANE_BACKUP_S3_SECRET_ACCESS_KEY", Catalog, Is(crate::kit::s3::SECRET_KEY), Effect(RESTORED)),
    ("TENANT_PLANE_BACKUP_S3_ALLOW_HTTP", Catalog, Is("true"), Effect(RESTORED)),
    // Its effect over HTTPS: the embedded start of `point_in_time_s3.rs`.
    ("TENANT_PLANE_BACKUP_S3_CA_FILE", Catalog, Made(|r| r.path("s3-ca.pem")), Starts),
    // 0: no scheduled backup of the free tenant races the one the test takes.
    ("TENANT_PLANE_BACKUP_EVERY_HOURS_FREE", Catalog, Is("0"), Starts),
    ("TENANT_PLANE_BACKUP_EVERY_HOURS_STANDARD", Catalog, Is("48"), Starts),
    ("TENANT_PLANE_BACKUP_EVERY_HOURS_ENTERPRISE", Catalog, Is("12"), Starts),
    ("TENANT_PLANE_BACKUP_SCRATCH_DIR", Catalog, Made(|r| r.path("scratch")), Effect("the backup's dump is made in a folder there")),
    ("TENANT_PLANE_BACKUP_KEEP_DAILY", Catalog, Is("3"), Starts),
    ("TENANT_PLANE_BACKUP_KEEP_WEEKLY", Catalog, Is("2"), Starts),
    // Point-in-time restore: its effects are the embedded starts of `point_in_time.rs`.
    ("TENANT_PLANE_BACKUP_ARCHIVE_TIMEOUT_SECS", Catalog, Is("30"), Starts),
    ("TENANT_PLANE_BACKUP_FULL_EVERY_DAYS", Catalog, Is("14"), Starts),
    ("TENANT_PLANE_BACKUP_DIFF_EVERY_HOURS", Catalog, Is("12"), Starts),
    ("TENANT_PLANE_BACKUP_RECOVERY_DIR", Catalog, Made(|r| r.path("recovery")), Starts),
    // Their effects: the replicas of `usage_replicas.rs` run with them set.
    ("TENANT_PLANE_USAGE_FLUSH_SECS", Catalog, Is("120"), Starts),
    ("TENANT_PLANE_USAGE_SAMPLE_SECS", Catalog, Is("600"), Starts),
    ("TENANT_PLANE_USAGE_HOURLY_RETENTION_DAYS", Catalog, Is("40"), Starts),
    // Its effect off: `usage.rs`; the baseline of `benches/metering.rs`.
    ("TENANT_PLANE_USAGE_METER_REQUESTS", Catalog, Is("true"), Starts),
    // Its effect: `sso_cli.rs` runs the CLI with it set, and without it.
    ("TENANT_PLANE_IDENTITY_ALLOWED_ADDRESSES", Catalog, Is("[127.0.0.1/32, 10.1.2.0/24]"), Starts),
    ("TENANT_PLANE_IDENTITY_REFETCH_SECS", Catalog, Is("10"), Starts),
    ("TENANT_PLANE_IDENTITY_KEYS_TTL_SECS", Catalog, Is("600"), Starts),
    ("TENANT_PLANE_IDENTITY_FETCH_TIMEOUT_SECS", Catalog, Is("3"), Starts),
    // Its effect: `sso_keys.rs` reaches a provider over HTTPS through it.
    ("TENANT_PLANE_IDENTITY_CA_FILE", Catalog, Made(|r| r.path("s3-ca.pem")), Starts),
    ("TENANT_PLANE_IDENTITY_PUBLIC_URL", Catalog, Is("https://plane.example.com"), Starts),
    ("TENANT_PLANE_GATEWAY_LISTEN", Catalog, Made(|r| r.gateway.clone()), Effect(GATEWAY)),
    ("TENANT_PLANE_GATEWAY_TLS_CERT", Catalog, Made(|r| r.path("gateway-cert.pem")), Effect(GATEWAY)),
    ("TENANT_PLANE_GATEWAY_TLS_KEY", Catalog, Made(|r| r.path("gateway-key.pem")), Effect(GATEWAY)),
    ("TENANT_PLANE_GATEWAY_ALLOW_PLAIN", Catalog, Is("false"), Starts),
    ("TENANT_PLANE_GATEWAY_MAX_CLIENTS", Catalog, Is("500"), Starts),
    ("TENANT_PLANE_GATEWAY_LOGIN_TIMEOUT_SECS", Catalog, Is("10"), Starts),
    ("TENANT_PLANE_WEBHOOKS_URL", Catalog, Made(|r| r.webhooks.url.clone()), Effect(WEBHOOKS)),
    ("TENANT_PLANE_WEBHOOKS_SECRET", Catalog, Is(WEBHOOK_SECRET), Effect(WEBHOOKS)),
    ("TENANT_PLANE_WEBHOOKS_MAX_ATTEMPTS", Catalog, Is("5"), Starts),
    // Their effects: `migration_lock_safety.rs` runs the CLI with them set.
    ("TENANT_PLANE_MIGRATIONS_LOCK_TIMEOUT_MS", Catalog, Is("1500"), Starts),
    ("TENANT_PLANE_MIGRATIONS_STATEMENT_TIMEOUT_MS", Catalog, Is("300000"), Starts),
    ("TENANT_PLANE_MIGRATIONS_LOCK_RETRIES", Catalog, Is("2"), Starts),
    ("TENANT_PLANE_MIGRATIONS_LOCK_RETRY_BACKOFF_MS", Catalog, Is("250"), Starts),
    ("TENANT_PLANE_RECONCILER_STALE_AFTER_SECS", Catalog, Is("30"), Starts),
    ("TENANT_PLANE_RECONCILER_INTERVAL_SECS", Catalog, Is("20"), Starts),
    ("TENANT_PLANE_ROUTER_MAX_POOLS", Catalog, Is("200"), Starts),
    ("TENANT_PLANE_ROUTER_CONNECTION_BUDGET", Catalog, Is("20"), Starts),
    ("TENANT_PLANE_ROUTER_MAX_STARTING", Catalog, Is("3"), Starts),
    ("TENANT_PLANE_ROUTER_ACQUIRE_TIMEOUT_MS", Catalog, Is("1500"), Starts),
    ("TENANT_PLANE_ROUTER_CONNECT_TIMEOUT_MS", Catalog, Is("800"), Starts),
    ("TENANT_PLANE_ROUTER_RATE_LIMIT_SCALE", Catalog, Is("0.5"), Starts),
    ("TENANT_PLANE_ROUTER_STATEMENT_TIMEOUT_FREE_MS", Catalog, Is("1000"), Starts),
    ("TENANT_PLANE_ROUTER_STATEMENT_TIMEOUT_STANDARD_MS", Catalog, Is("3000"), Starts),
    ("TENANT_PLANE_ROUTER_STATEMENT_TIMEOUT_ENTERPRISE_MS", Catalog, Is("10000"), Starts),
    ("TENANT_PLANE_ROUTER_IDLE_IN_TRANSACTION_TIMEOUT_MS", Catalog, Is("5000"), Starts),
    ("TENANT_PLANE_ROUTER_POOL_SIZE_FREE", Catalog, Is("1"), Starts),
    ("TENANT_PLANE_ROUTER_POOL_SIZE_STANDARD", Catalog, Is("3"), Starts),
    ("TENANT_PLANE_ROUTER_POOL_SIZE_ENTERPRISE", Catalog, Is("8"), Starts),
    ("TENANT_PLANE_METRICS_TENANT_LABEL_LIMIT", Catalog, Is("10"), Starts),
    ("TENANT_PLANE_METRICS_TOKEN", Catalog, Is(METRICS_TOKEN), Effect("/metrics answers 401 without the bearer, 200 with it")),
    ("TENANT_PLANE_METRICS_REFRESH_SECS", Catalog, Is("5"), Starts),
    ("TENANT_PLANE_HTTP_DENIALS_PER_MINUTE", Catalog, Is("30"), Starts),
    // A list in the variable too; the TOML start checks the effect.
    ("TENANT_PLANE_HTTP_TRUSTED_PROXIES", Catalog, Is("[10.0.0.0/8, 192.168.0.0/16]"), Starts),
    ("TENANT_PLANE_HTTP_MAX_EVENT_STREAMS", Catalog, Is("1"), Effect("a second event stream gets 503 too_many_streams")),
    ("TENANT_PLANE_TENANTS_MAX_API_KEYS", Catalog, Is("20"), Starts),
    ("TENANT_PLANE_TOKENS_MAX_TTL_SECS", Cli, Is("259200"), Effect("`token --ttl 48h` is made, and lasts 48 h")),
    ("TENANT_PLANE_RETENTION_AUDIT_DAYS", Catalog, Is("365"), Starts),
    ("TENANT_PLANE_RETENTION_IDEMPOTENCY_HOURS", Catalog, Is("12"), Starts),
    ("TENANT_PLANE_RETENTION_OPERATIONS_DAYS", Catalog, Is("30"), Starts),
];

/// The TOML file of the `Embedded` start: several settings, the list of
/// trusted proxies among them. `{port}` and `{dir}` are filled in.
pub const TOML: &str = r#"
listen = "127.0.0.1:{port}"
log_format = "text"

[http]
trusted_proxies = ["127.0.0.1/32", "::1/128"]
denials_per_minute = 120

[metrics]
token = "toml-metrics-token-0123456789"

[backup]
location = "{dir}/backups"
every_hours_free = 0

[tenants]
retention_days = 7

[router]
connection_budget = 10
pool_size_free = 2

[reconciler]
stale_after_secs = 20
"#;

/// What the starts need: files (closed, as `mktemp -d` makes them), an
/// open folder for the embedded cluster, a new catalog database, a free
/// address, a real S3 server and a webhook receiver.
pub struct Resources {
    pub files: tempfile::TempDir,
    pub fallback: tempfile::TempDir,
    pub catalog: String,
    pub catalog_url: String,
    pub listen: String,
    /// The gateway's address; its certificate is in `gateway-cert.pem`,
    /// signed by the CA in `s3-ca.pem`.
    pub gateway: String,
    pub s3: crate::kit::s3::S3Server,
    pub webhooks: Receiver,
}

impl Resources {
    pub async fn new() -> Self {
        let files = tempfile::tempdir().unwrap();
        std::fs::set_permissions(files.path(), PermissionsExt::from_mode(0o700)).unwrap();
        let keys = files.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let key = crate::kit::keys::TestKey::generate(&keys, KID, Algorithm::EdDSA);
        crate::kit::keys::write_jwks(&files.path().join("jwks.json"), &[&key]);
        std::fs::write(files.path().join("master.key"), format!("{MASTER_KEY}\n")).unwrap();
        let ca = crate::kit::ca::TestCa::new("user path S3 CA");
        let (cert, key) = ca.server_cert("localhost");
        std::fs::write(files.path().join("gateway-cert.pem"), cert).unwrap();
        std::fs::write(files.path().join("gateway-key.pem"), key).unwrap();
        std::fs::write(files.path().join("s3-ca.pem"), ca.pem).unwrap();
        let catalog = crate::cluster::catalog_name("user_path");
        Self {
            catalog_url: crate::cluster::shared()
                .url(&catalog)
                .expose_secret()
                .to_string(),
            catalog,
            listen: free_address(),
            gateway: free_address(),
            fallback: crate::kit::binary::open_folder(),
            files,
            s3: crate::kit::s3::start().await,
            webhooks: receiver().await,
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.files.path().join(name).display().to_string()
    }

    pub fn command(&self, starts: &[Start]) -> Command {
        let mut cmd = command();
        for start in starts {
            for (var, value) in env_of(*start, self) {
                cmd.env(var, value);
            }
        }
        cmd
    }
}

pub fn free_address() -> String {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().to_string()
}

/// A webhook receiver on 127.0.0.1: it keeps each request's event name,
/// signature and body, and answers 204.
pub struct Receiver {
    pub url: String,
    pub got: Deliveries,
}

/// (event, signature, body) of each request the receiver got.
pub type Deliveries = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let got = Deliveries::default();
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (mut raw, mut buf) = (Vec::new(), [0u8; 4096]);
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&raw[..end]).to_string();
                    let header = |name: &str| {
                        head.lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                            .map(|(_, v)| v.trim().to_string())
                            .unwrap_or_default()
                    };
                    let length: usize = header("content-length").parse().unwrap_or(0);
                    if raw.len() < end + 4 + length {
                        continue;
                    }
                    let body = raw[end + 4..end + 4 + length].to_vec();
                    let event = (
                        header("tenant-plane-event"),
                        header("tenant-plane-signature"),
                        body,
                    );
                    seen.lock().unwrap().push(event);
                    let answer =
                        "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                    let _ = socket.write_all(answer.as_bytes()).await;
                    return;
                }
            });
        }
    });
    Receiver { url, got }
}

/// The variables `start` sets, with their example values.
pub fn env_of(start: Start, resources: &Resources) -> Vec<(&'static str, String)> {
    SETTINGS
        .iter()
        .filter(|(_, s, _, _)| *s == start)
        .map(|(var, _, example, _)| {
            let value = match example {
                Is(value) => value.to_string(),
                Made(make) => make(resources),
            };
            (*var, value)
        })
        .collect()
}

/// The variables the README's configuration table names, shorthand expanded.
pub fn readme_variables(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README.md has a `## Configuration` section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `TENANT_PLANE_"))
        .flat_map(|row| expand(row.split('|').nth(1).unwrap()))
        .collect()
}

/// The names in a row's first cell. After a full name, `_B` in a list is
/// its sibling in the same section (`TENANT_PLANE_WEBHOOKS_URL`, `_SECRET`),
/// and `(_B)` is a variant that replaces as many of its last words as `_B`
/// has (`…_TIMEOUT_FREE_MS` (`_STANDARD_MS`)).
fn expand(cell: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut base: Option<String> = None;
    let mut depth = 0i32;
    // Odd pieces are inside backticks.
    for (i, piece) in cell.split('`').enumerate() {
        if i % 2 == 0 {
            depth += piece.matches('(').count() as i32 - piece.matches(')').count() as i32;
            continue;
        }
        if let Some(rest) = piece.strip_prefix("TENANT_PLANE_") {
            assert!(is_shout(rest), "not a variable name: {piece}");
            base = Some(rest.to_string());
            names.push(piece.to_string());
            continue;
        }
        let Some(suffix) = piece.strip_prefix('_').filter(|s| is_shout(s)) else {
            continue;
        };
        let base = base
            .as_deref()
            .unwrap_or_else(|| panic!("`{piece}` follows no full name in {cell}"));
        let words: Vec<&str> = base.split('_').collect();
        let keep = if depth > 0 {
            let replaced = suffix.split('_').count();
            assert!(replaced < words.len(), "`{piece}` is longer than {base}");
            words.len() - replaced
        } else {
            1
        };
        names.push(format!("TENANT_PLANE_{}_{suffix}", words[..keep].join("_")));
    }
    names
}

fn is_shout(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}
