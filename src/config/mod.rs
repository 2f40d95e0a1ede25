//! Typed settings, read in layers: defaults, then an optional TOML file, then
//! `TENANT_PLANE_*` environment variables. Nothing else in the crate reads the
//! environment for settings.
//!
//! Rule: every secret setting is a `SecretString` (`database_url`,
//! `jwt_secret`, `master_key`, …), so none prints in `Debug`, logs or errors.

#[macro_use]
mod section;

mod backup;
mod gateway;
mod identity;
mod load;
mod paths;
mod usage;

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

pub use backup::{BackupSettings, Bucket, WebhookSettings};
pub use gateway::{GatewaySettings, EMBEDDED_GATEWAY};
pub use identity::IdentitySettings;
pub use load::ConfigError;
pub use paths::{absolute, parse_absolute};
pub use usage::UsageSettings;

section! {
    /// Every setting the service reads. Each field says what it means and its default.
    pub struct Settings {
        /// Address the HTTP API listens on. `TENANT_PLANE_LISTEN`, default `127.0.0.1:8080`.
        pub listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)),
        /// The catalog database. `TENANT_PLANE_DATABASE_URL`. When unset, `serve`
        /// starts a managed local PostgreSQL under `data_dir` (the embedded default).
        pub database_url: Option<SecretString> = None,
        /// HS256 secret for access tokens, at least 32 bytes. `TENANT_PLANE_JWT_SECRET`.
        /// When unset, `serve` generates one and keeps it in `data_dir`.
        pub jwt_secret: Option<SecretString> = None,
        /// A JWKS file of public keys (RS256, ES256 or EdDSA, each with its
        /// `kid`) whose tokens are accepted besides HS256 ones. Read again
        /// whenever it changes. `TENANT_PLANE_JWT_PUBLIC_KEYS`.
        pub jwt_public_keys: Option<PathBuf> = None,
        /// A folder of PEM private keys named `<kid>.pem`: `tenant-plane token`
        /// signs with the newest JWKS key it finds there. `TENANT_PLANE_JWT_PRIVATE_KEYS`.
        pub jwt_private_keys: Option<PathBuf> = None,
        /// When set, a token's `iss` must be this. `TENANT_PLANE_JWT_ISSUER`.
        pub jwt_issuer: Option<String> = None,
        /// When set, a token's `aud` must name this. `TENANT_PLANE_JWT_AUDIENCE`.
        pub jwt_audience: Option<String> = None,
        /// AES-256-GCM key (64 hex digits) that encrypts tenant role passwords and
        /// integration secrets in the catalog. `TENANT_PLANE_MASTER_KEY`. When
        /// unset, `serve` generates one and keeps it in `data_dir`; replicas that
        /// share a catalog must share this key.
        pub master_key: Option<SecretString> = None,
        /// A file holding the master key (64 hex digits), read at start-up: the
        /// key can live outside the data directory it protects.
        /// `TENANT_PLANE_MASTER_KEY_FILE`; not together with `master_key`.
        pub master_key_file: Option<PathBuf> = None,
        /// Where the embedded cluster and generated secrets live. `TENANT_PLANE_DATA_DIR`,
        /// default `.tenant-plane`. A relative path is taken from the working
        /// directory of the process that reads the settings, once, at start-up.
        pub data_dir: PathBuf = PathBuf::from(".tenant-plane"),
        /// `text` (default) or `json` log lines. `TENANT_PLANE_LOG_FORMAT`.
        pub log_format: LogFormat = LogFormat::Text,
        pub http: HttpSettings = HttpSettings::default(),
        pub catalog: CatalogSettings = CatalogSettings::default(),
        pub embedded: EmbeddedSettings = EmbeddedSettings::default(),
        pub tenants: TenantSettings = TenantSettings::default(),
        pub reconciler: ReconcilerSettings = ReconcilerSettings::default(),
        pub migrations: MigrationSettings = MigrationSettings::default(),
        pub router: RouterSettings = RouterSettings::default(),
        pub metrics: MetricsSettings = MetricsSettings::default(),
        pub backup: BackupSettings = BackupSettings::default(),
        pub webhooks: WebhookSettings = WebhookSettings::default(),
        pub retention: RetentionSettings = RetentionSettings::default(),
        pub tokens: TokenSettings = TokenSettings::default(),
        pub usage: UsageSettings = UsageSettings::default(),
        pub identity: IdentitySettings = IdentitySettings::default(),
        pub gateway: GatewaySettings = GatewaySettings::default(),
    }
}

section! {
    pub struct TokenSettings {
        /// The longest lifetime `tenant-plane token --ttl` may give a token.
        /// `TENANT_PLANE_TOKENS_MAX_TTL_SECS`, default 86400 (24 h).
        pub max_ttl_secs: u64 = 24 * 3600,
    }
}

section! {
    pub struct RetentionSettings {
        /// Days audit events (and denial counts) are kept.
        /// `TENANT_PLANE_RETENTION_AUDIT_DAYS`, default 400.
        pub audit_days: u32 = 400,
        /// Hours an idempotency key is kept after its request finished; a retry
        /// after that runs again. `TENANT_PLANE_RETENTION_IDEMPOTENCY_HOURS`, default 24.
        pub idempotency_hours: u32 = 24,
        /// Days finished operations and migration-run ledgers are kept.
        /// `TENANT_PLANE_RETENTION_OPERATIONS_DAYS`, default 90.
        pub operations_days: u32 = 90,
    }
}

section! {
    pub struct MetricsSettings {
        /// How many tenants get a `tenant` label of their own on request
        /// metrics (the first ones seen); the rest share `other`. 0, the
        /// default, labels none, so the series count never grows with tenants.
        /// `TENANT_PLANE_METRICS_TENANT_LABEL_LIMIT`.
        pub tenant_label_limit: usize = 0,
        /// When set, `/metrics` answers only `Authorization: Bearer <token>`.
        /// `TENANT_PLANE_METRICS_TOKEN`; unset by default (the page is open).
        pub token: Option<SecretString> = None,
        /// Seconds between refreshes of the fleet gauges from the catalog (a
        /// scrape never queries it). `TENANT_PLANE_METRICS_REFRESH_SECS`, default 15.
        pub refresh_secs: u64 = 15,
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

section! {
    pub struct HttpSettings {
        /// Largest request body accepted, in bytes; larger ones get 413.
        /// `TENANT_PLANE_HTTP_MAX_BODY_BYTES`, default 262144.
        pub max_body_bytes: usize = 256 * 1024,
        /// HTTP worker threads; 0 means one per CPU. `TENANT_PLANE_HTTP_WORKERS`.
        pub workers: usize = 0,
        /// Seconds in-flight requests get to finish on shutdown.
        /// `TENANT_PLANE_HTTP_SHUTDOWN_TIMEOUT_SECS`, default 30.
        pub shutdown_timeout_secs: u64 = 30,
        /// Addresses (CIDR blocks) of the proxies in front of the service: only
        /// a peer among them may name the client with `X-Forwarded-For`.
        /// `TENANT_PLANE_HTTP_TRUSTED_PROXIES` (a list: `[10.0.0.0/8, 192.168.0.0/16]`,
        /// in the variable or in the TOML file), default none.
        pub trusted_proxies: Vec<ipnet::IpNet> = Vec::new(),
        /// Refused requests (401, 403) one client address may make in a minute;
        /// past that it gets 429 before its credentials are checked.
        /// `TENANT_PLANE_HTTP_DENIALS_PER_MINUTE`, default 60.
        pub denials_per_minute: u32 = 60,
        /// Event streams (`GET /v1/events`) open at once in this process; past
        /// that a new one gets 503 `too_many_streams`.
        /// `TENANT_PLANE_HTTP_MAX_EVENT_STREAMS`, default 256.
        pub max_event_streams: usize = 256,
    }
}

section! {
    pub struct CatalogSettings {
        /// Connections in the catalog pool. `TENANT_PLANE_CATALOG_POOL_SIZE`, default 8.
        pub pool_size: usize = 8,
        /// Seconds to wait for a catalog connection before failing the request.
        /// `TENANT_PLANE_CATALOG_CONNECT_TIMEOUT_SECS`, default 5.
        pub connect_timeout_secs: u64 = 5,
    }
}

section! {
    pub struct EmbeddedSettings {
        /// Port of the managed local PostgreSQL; 0 picks a free one at each start.
        /// `TENANT_PLANE_EMBEDDED_PORT`, default 0.
        pub port: u16 = 0,
        /// Directory holding `initdb`, `pg_ctl` and `postgres`. When unset they are
        /// looked up on `PATH`, then under `/usr/lib/postgresql/<version>/bin`.
        /// `TENANT_PLANE_EMBEDDED_BIN_DIR`.
        pub bin_dir: Option<PathBuf> = None,
        /// Where the cluster goes when this process runs as root and the
        /// `postgres` user cannot reach the data directory (a checkout under
        /// `/root`, or in a `mktemp -d` folder, both mode 700). The cluster then
        /// lives in `<fallback_dir>/clusters/<id>`, and `<data_dir>/cluster` links
        /// to it. `TENANT_PLANE_EMBEDDED_FALLBACK_DIR`, default `/var/lib/tenant-plane`.
        pub fallback_dir: PathBuf = PathBuf::from("/var/lib/tenant-plane"),
    }
}

section! {
    pub struct TenantSettings {
        /// Days a soft-deleted tenant's database is kept before it is purged.
        /// `TENANT_PLANE_TENANTS_RETENTION_DAYS`, default 30.
        pub retention_days: u32 = 30,
        /// Live (unrevoked, unexpired) API keys a tenant may have; one more gets
        /// 409 `api_key_limit`. `TENANT_PLANE_TENANTS_MAX_API_KEYS`, default 100.
        pub max_api_keys: u32 = 100,
    }
}

section! {
    pub struct RouterSettings {
        /// Tenant pools kept at once (least recently used are closed first).
        /// `TENANT_PLANE_ROUTER_MAX_POOLS`, default 1000.
        pub max_pools: u64 = 1000,
        /// Router connections allowed to one database server, across all of its
        /// tenants' pools, unless the server sets its own.
        /// `TENANT_PLANE_ROUTER_CONNECTION_BUDGET`, default 50.
        pub connection_budget: u32 = 50,
        /// Tenant sessions that may be starting at once on one database
        /// server, HTTP and gateway together; the rest wait their turn
        /// within the acquire timeout. `TENANT_PLANE_ROUTER_MAX_STARTING`,
        /// default 2.
        pub max_starting: u32 = 2,
        /// Milliseconds a request waits for a connection before it gets 503.
        /// `TENANT_PLANE_ROUTER_ACQUIRE_TIMEOUT_MS`, default 2000.
        pub acquire_timeout_ms: u64 = 2000,
        /// Seconds an idle connection, or an unused pool, is kept.
        /// `TENANT_PLANE_ROUTER_IDLE_TIMEOUT_SECS`, default 300.
        pub idle_timeout_secs: u64 = 300,
        /// Seconds a cached tenant route is trusted without a change notice.
        /// `TENANT_PLANE_ROUTER_ROUTE_TTL_SECS`, default 60.
        pub route_ttl_secs: u64 = 60,
        /// Scales every tier's request rate limit; 0 turns rate limits off.
        /// `TENANT_PLANE_ROUTER_RATE_LIMIT_SCALE`, default 1.0.
        pub rate_limit_scale: f64 = 1.0,
        /// Milliseconds a new tenant session may take to open before its server
        /// counts as unreachable (the request gets 503).
        /// `TENANT_PLANE_ROUTER_CONNECT_TIMEOUT_MS`, default 1000.
        pub connect_timeout_ms: u64 = 1000,
        /// Milliseconds one statement of a free-tier tenant may run before it
        /// is cancelled (the request gets 503 `query_timeout`).
        /// `TENANT_PLANE_ROUTER_STATEMENT_TIMEOUT_FREE_MS`, default 2000.
        pub statement_timeout_free_ms: u64 = 2000,
        /// Likewise for the standard tier. `…_STANDARD_MS`, default 5000.
        pub statement_timeout_standard_ms: u64 = 5000,
        /// Likewise for the enterprise tier. `…_ENTERPRISE_MS`, default 15000.
        pub statement_timeout_enterprise_ms: u64 = 15000,
        /// Milliseconds a tenant session may sit idle inside a transaction
        /// before PostgreSQL ends it. `TENANT_PLANE_ROUTER_IDLE_IN_TRANSACTION_TIMEOUT_MS`,
        /// default 10000.
        pub idle_in_transaction_timeout_ms: u64 = 10000,
        /// Connections one free-tier tenant's pool may hold; set, it must fit
        /// in `connection_budget`. `TENANT_PLANE_ROUTER_POOL_SIZE_FREE`,
        /// default 2 (or the budget, if that is smaller).
        pub pool_size_free: Option<u32> = None,
        /// Likewise for the standard tier. `…_POOL_SIZE_STANDARD`, default 5.
        pub pool_size_standard: Option<u32> = None,
        /// Likewise for the enterprise tier. `…_POOL_SIZE_ENTERPRISE`, default 10.
        pub pool_size_enterprise: Option<u32> = None,
    }
}

impl RouterSettings {
    /// The pool size of one tenant of `tier`.
    pub fn pool_size(&self, tier: crate::domain::Tier) -> usize {
        use crate::domain::Tier;
        let (set, default) = match tier {
            Tier::Free => (self.pool_size_free, 2),
            Tier::Standard => (self.pool_size_standard, 5),
            Tier::Enterprise => (self.pool_size_enterprise, 10),
        };
        set.unwrap_or_else(|| default.min(self.connection_budget.max(1))) as usize
    }
}

section! {
    pub struct MigrationSettings {
        /// A directory of `V<n>__name.sql` tenant migrations read at start-up,
        /// instead of the `tenant_template/migrations` built into the binary.
        /// `TENANT_PLANE_MIGRATIONS_TENANT_DIR`.
        pub tenant_dir: Option<PathBuf> = None,
        /// How long a tenant migration's statement waits for a lock before it
        /// gives up (and is retried), so the tenant's own queries never queue
        /// behind it for longer. `TENANT_PLANE_MIGRATIONS_LOCK_TIMEOUT_MS`, default 2000.
        pub lock_timeout_ms: u64 = 2000,
        /// The longest one statement of a tenant migration may run.
        /// `TENANT_PLANE_MIGRATIONS_STATEMENT_TIMEOUT_MS`, default 600000.
        pub statement_timeout_ms: u64 = 600_000,
        /// Retries of a tenant migration that hit its lock timeout, before the
        /// tenant fails. `TENANT_PLANE_MIGRATIONS_LOCK_RETRIES`, default 3.
        pub lock_retries: u32 = 3,
        /// The wait before the first retry; it doubles for each next one.
        /// `TENANT_PLANE_MIGRATIONS_LOCK_RETRY_BACKOFF_MS`, default 500.
        pub lock_retry_backoff_ms: u64 = 500,
    }
}

section! {
    pub struct ReconcilerSettings {
        /// Seconds between reconciler passes. `TENANT_PLANE_RECONCILER_INTERVAL_SECS`, default 60.
        pub interval_secs: u64 = 60,
        /// An unfinished operation untouched for this long is taken to be
        /// abandoned by a crashed process, and is finished or undone.
        /// `TENANT_PLANE_RECONCILER_STALE_AFTER_SECS`, default 60.
        pub stale_after_secs: u64 = 60,
    }
}

#[cfg(test)]
mod tests;
