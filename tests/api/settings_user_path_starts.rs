//! The starts of the user-path rule (`settings_user_path.rs`): `serve` on a
//! new catalog of the test cluster with every `Catalog` setting in its
//! environment, and `token` with the `Cli` ones too; then `serve` with the
//! embedded PostgreSQL, the `Embedded` settings and a TOML file. Each start
//! must reach its banner, show the effects its entries name, and stop
//! cleanly on SIGTERM.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::kit::binary::{run, terminate};
use crate::kit::user_path::{
    free_address, Resources, Start, AUDIENCE, ISSUER, KID, METRICS_TOKEN, TOML, WEBHOOK_SECRET,
};

/// A running `serve`: its base URL, the token it printed, and its log lines.
struct Started {
    child: Child,
    base: String,
    token: Option<String>,
    log: tokio::task::JoinHandle<Vec<String>>,
}

/// Starts `serve` from `cmd` as the caller set it (the listen address
/// included) and waits for its banner; standard error is kept.
async fn start(cmd: &mut Command) -> Started {
    let mut child = cmd
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            eprintln!("serve: {line}");
            lines.push(line);
        }
        lines
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut token) = (None, None);
    let banner = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("tenant-plane listening on ") {
                base = Some(url.to_string());
            } else if let Some((_, t)) = line
                .strip_prefix("super_admin token (valid ")
                .and_then(|rest| rest.split_once("): "))
            {
                token = Some(t.to_string());
            } else if line.starts_with("try: curl") {
                return;
            }
        }
        panic!("serve exited before its banner");
    };
    tokio::time::timeout(Duration::from_secs(180), banner)
        .await
        .expect("serve printed its banner");
    Started {
        child,
        base: base.expect("a listening line"),
        token,
        log,
    }
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// The claims of a token, unverified (the server verifies it).
fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Polls `until` every 100 ms for at most `secs`; `what` says what waited.
async fn wait_for(secs: u64, what: &str, mut until: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !until() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serve_and_token_take_every_catalog_and_cli_setting_from_the_environment_with_their_effects(
) {
    let r = Resources::new().await;
    let http = reqwest::Client::new();
    let mut serving = start(r.command(&[Start::Catalog]).env("RUST_LOG", "info")).await;
    let base = &serving.base;
    assert_eq!(base, &format!("http://{}", r.listen), "it listens there");
    assert_eq!(status(http.get(format!("{base}/healthz"))).await, 200);

    // `token` signs with the EdDSA key it holds, for as long as the cap allows.
    let (code, out, err) = run(r.command(&[Start::Catalog, Start::Cli]).args([
        "token",
        "--role",
        "super_admin",
        "--ttl",
        "48h",
    ]))
    .await;
    assert_eq!(code, 0, "{err}");
    let signed = out.trim().to_string();
    let header = jsonwebtoken::decode_header(&signed).unwrap();
    assert_eq!(
        (header.alg, header.kid.as_deref()),
        (Algorithm::EdDSA, Some(KID))
    );
    let claims = claims_of(&signed);
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].clone()),
        (Some(ISSUER), json!(AUDIENCE))
    );
    let ttl = claims["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!((48 * 3600 - 60..=48 * 3600).contains(&ttl), "ttl {ttl}");
    // Without the key folder: HS256 with the secret.
    let (code, out, err) =
        run(r
            .command(&[Start::Catalog])
            .args(["token", "--role", "super_admin"]))
        .await;
    assert_eq!(code, 0, "{err}");
    let hs256 = out.trim().to_string();
    assert_eq!(
        jsonwebtoken::decode_header(&hs256).unwrap().alg,
        Algorithm::HS256
    );
    let servers = format!("{base}/v1/servers");
    assert_eq!(status(http.get(&servers).bearer_auth(&signed)).await, 200);
    assert_eq!(status(http.get(&servers).bearer_auth(&hs256)).await, 200);
    // The gateway on its address, over TLS with the certificate it was given.
    gateway_over_tls(&r, &http, base, &signed).await;
    let bare = crate::helpers::sign(tenant_plane::auth::Claims::new(
        "no-issuer",
        tenant_plane::auth::Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(600),
    ));
    assert_eq!(
        status(http.get(&servers).bearer_auth(bare)).await,
        401,
        "iss and aud are required"
    );

    let metrics = format!("{base}/metrics");
    assert_eq!(status(http.get(&metrics)).await, 401);
    assert_eq!(
        status(http.get(&metrics).bearer_auth(METRICS_TOKEN)).await,
        200
    );

    // A tenant: in the catalog named, announced to the webhook receiver.
    let created = http
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(&hs256)
        .json(&json!({ "name": "User path", "slug": "user-path", "tier": "free" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let tenant: Value = created.json().await.unwrap();
    let id = tenant["id"].as_str().unwrap().to_string();
    assert_eq!(tenant["tier"], "free");
    let catalog = crate::cluster::shared().connect(&r.catalog).await;
    let row = catalog
        .query_one("SELECT count(*) FROM tenants WHERE slug = 'user-path'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);

    // A backup: into the bucket, through the endpoint and keys given.
    let taken = http
        .post(format!("{base}/v1/tenants/{id}/backups"))
        .bearer_auth(&hs256)
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 202);
    let operation = format!("{base}{}", taken.headers()["location"].to_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let op: Value = http
            .get(&operation)
            .bearer_auth(&hs256)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match op["state"].as_str().unwrap() {
            "succeeded" => break,
            "failed" | "cancelled" => panic!("the backup failed: {op}"),
            _ => assert!(Instant::now() < deadline, "the backup never finished: {op}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(r.s3.objects().len(), 1, "one archive in the bucket");
    assert!(
        Path::new(&r.path("scratch")).is_dir(),
        "the dump's scratch folder"
    );

    // One event stream at a time: the second is refused while the first is open.
    let events = format!("{base}/v1/events");
    let first = http.get(&events).bearer_auth(&hs256).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = http.get(&events).bearer_auth(&hs256).send().await.unwrap();
    let (code, error, _) = crate::helpers::envelope(second).await;
    assert_eq!((code, error.as_str()), (503, "too_many_streams"));
    drop(first);

    let got = r.webhooks.got.clone();
    let created_seen = || {
        got.lock()
            .unwrap()
            .iter()
            .any(|(event, ..)| event == "tenant.created")
    };
    wait_for(30, "tenant.created reached the receiver", created_seen).await;
    for (event, signature, body) in got.lock().unwrap().iter() {
        let t: i64 = signature[2..].split(',').next().unwrap().parse().unwrap();
        let expected = tenant_plane::events::sign(WEBHOOK_SECRET, t, body);
        assert_eq!(signature, &expected, "{event} is signed with the secret");
    }

    terminate(&mut serving.child).await;
    let log = serving.log.await.unwrap();
    assert!(!log.is_empty(), "serve logged at info");
    for line in &log {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(line["level"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn serve_with_the_embedded_postgres_takes_its_settings_from_the_environment_and_a_toml_file()
{
    let r = Resources::new().await;
    let http = reqwest::Client::new();
    let port = free_address().rsplit_once(':').unwrap().1.to_string();
    let toml = r.files.path().join("tenant-plane.toml");
    let text = TOML
        .replace("{port}", &port)
        .replace("{dir}", &r.files.path().display().to_string());
    std::fs::write(&toml, text).unwrap();
    let mut cmd = r.command(&[Start::Embedded]);
    let mut serving = start(cmd.arg("--config").arg(&toml)).await;
    let base = serving.base.clone();
    assert_eq!(
        base,
        format!("http://127.0.0.1:{port}"),
        "the file's listen"
    );
    let token = serving.token.clone().expect("a first start prints a token");

    // The token secret is generated under the data directory; the master
    // key comes from its file, so none is generated there.
    let data_dir = Path::new(&r.path("data")).to_path_buf();
    assert!(data_dir.join("secrets/jwt_secret").is_file());
    assert!(!data_dir.join("secrets/master_key").exists());
    if nix::unistd::Uid::effective().is_root() {
        // The postgres user cannot enter the closed data directory.
        let home = std::fs::canonicalize(data_dir.join("cluster")).unwrap();
        assert!(home.starts_with(std::fs::canonicalize(r.fallback.path()).unwrap()));
    }
    assert!(
        Path::new(&r.path("backups")).is_dir(),
        "the file's backup folder"
    );
    let metrics = format!("{base}/metrics");
    assert_eq!(status(http.get(&metrics)).await, 401);
    let toml_token = "toml-metrics-token-0123456789";
    assert_eq!(
        status(http.get(&metrics).bearer_auth(toml_token)).await,
        200
    );

    // The file trusts this host as a proxy: the address it forwards is audited.
    let created = http
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({ "name": "Toml", "slug": "toml" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let audit: Value = http
        .get(format!("{base}/v1/fleet/audit"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = audit["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["ip_address"] == "203.0.113.7"),
        "the forwarded address was audited: {audit}"
    );
    terminate(&mut serving.child).await;
    serving.log.await.unwrap();
}

/// A tenant and a key made over the API, then a login through the gateway
/// over TLS, checked against the CA that signed its certificate.
async fn gateway_over_tls(r: &Resources, http: &reqwest::Client, base: &str, token: &str) {
    let post = |path: String, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
    };
    let made = post(
        "/v1/tenants".into(),
        json!({ "name": "Gateway path", "slug": "gateway-path" }),
    );
    let tenant: Value = made.send().await.unwrap().json().await.unwrap();
    let id = tenant["id"].as_str().expect("a tenant");
    let minted = post(
        format!("/v1/tenants/{id}/api-keys"),
        json!({ "name": "wire", "role": "tenant_admin" }),
    );
    let key: Value = minted.send().await.unwrap().json().await.unwrap();
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(r.path("s3-ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let port = r.gateway.rsplit_once(':').unwrap().1.parse().unwrap();
    let (client, connection) = tokio_postgres::Config::new()
        .host("localhost")
        .port(port)
        .user("gateway-path")
        .password(key["key"].as_str().unwrap())
        .ssl_mode(tokio_postgres::config::SslMode::Require)
        .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        .await
        .expect("a key logs in over TLS");
    tokio::spawn(connection);
    let db: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(db.starts_with("ai_care_tenant_"), "{db}");
}
