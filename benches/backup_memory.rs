//! Backup memory: one tenant holding SIZE MiB of rows (default 1024) is
//! backed up into an S3-compatible bucket (s3s-fs, in-process) and the
//! process's resident memory is sampled every 10 ms.
//!
//! - service: `POST /v1/tenants/{id}/backups`, the service's own path:
//!   `pg_dump` to a file, then the archive encrypted and uploaded as one
//!   stream (a multipart upload);
//! - baseline: the plainest code a user would write instead: the same
//!   `pg_dump` to a file, read into memory, encrypted in one call
//!   (`age::encrypt`), and sent with one PUT.
//!
//! Reports, per design: peak RSS above the process's RSS before it began,
//! and the time taken. `pg_dump` is a child process and not counted in
//! either (it is the same in both).
//!
//! Usage: `cargo bench --bench backup_memory -- [SIZE_MIB]`

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::ObjectStore;
use secrecy::{ExposeSecret, SecretString};
use tenant_plane::config::Settings;
use tenant_plane::startup::Application;

const JWT_SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const ACCESS_KEY: &str = "bench";
const SECRET_KEY: &str = "bench-secret-key";

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Samples RSS every 10 ms until dropped; `peak()` is the highest seen.
struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Sampler {
    fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss_bytes()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn s3_server(root: &std::path::Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(root.join("backups"))?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
    let service = {
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.build()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        while let Ok((socket, _)) = listener.accept().await {
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    Ok(endpoint)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let size_mib: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1024);
    let (_dir, cluster) = common::start_cluster("tp-bench-backup-", false).await?;
    let s3_root = tempfile::tempdir()?;
    let endpoint = s3_server(s3_root.path()).await?;
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        database_url: Some(cluster.dsn("tenant_plane")),
        jwt_secret: Some(SecretString::from(JWT_SECRET)),
        master_key: Some(SecretString::from(MASTER_KEY)),
        ..Settings::default()
    };
    settings.backup.location = Some("s3://backups/bench".into());
    settings.backup.s3_endpoint = Some(endpoint.clone());
    settings.backup.s3_region = Some("us-east-1".into());
    settings.backup.s3_access_key_id = Some(ACCESS_KEY.into());
    settings.backup.s3_secret_access_key = Some(SecretString::from(SECRET_KEY));
    settings.backup.s3_allow_http = true;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let token = tenant_plane::auth::JwtKeys::hs256(&SecretString::from(JWT_SECRET))?.sign(
        &tenant_plane::auth::Claims::new(
            "bench",
            tenant_plane::auth::Role::SuperAdmin,
            None,
            None,
            Duration::from_secs(3600),
        ),
    )?;
    let http = reqwest::Client::new();
    let tenant: serde_json::Value = http
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "Big", "slug": "big" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let db = tenant["database"].as_str().unwrap().to_string();

    // SIZE MiB of incompressible rows (pg_dump compresses what it can).
    let started = Instant::now();
    let (admin, connection) =
        tokio_postgres::connect(cluster.dsn(&db).expose_secret(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    admin
        .batch_execute("CREATE TABLE bulk (id bigint, payload bytea)")
        .await?;
    let rows_per_mib = 1024 / 4; // 4 KiB a row
    for chunk in 0..size_mib.div_ceil(64) {
        let rows = 64 * rows_per_mib;
        admin
            .execute(
                "INSERT INTO bulk SELECT g, (SELECT string_agg(decode(md5(random()::text || g::text || i::text), 'hex'), ''::bytea) FROM generate_series(1, 256) i)
                   FROM generate_series($1::bigint, $2::bigint) g",
                &[&(chunk as i64 * rows as i64), &((chunk as i64 + 1) * rows as i64 - 1)],
            )
            .await?;
    }
    let size: i64 = admin
        .query_one("SELECT pg_total_relation_size('bulk')", &[])
        .await?
        .get(0);
    println!(
        "tenant filled: {:.0} MiB in bulk ({:.1} s)",
        mib(size as u64),
        started.elapsed().as_secs_f64()
    );

    // The service.
    let before = rss_bytes();
    let sampler = Sampler::start();
    let started = Instant::now();
    let op: serde_json::Value = http
        .post(format!("{base}/v1/tenants/{tid}/backups"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let location = format!("{base}/v1/operations/{}", op["id"].as_str().unwrap());
    let finished = loop {
        let op: serde_json::Value = http
            .get(&location)
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        if op["state"] != "running" {
            break op;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    anyhow::ensure!(
        finished["state"] == "succeeded",
        "the backup failed: {finished}"
    );
    let service_secs = started.elapsed().as_secs_f64();
    let service_peak = sampler.peak().saturating_sub(before);
    drop(sampler);
    let object_bytes = finished["progress"]["bytes"].as_i64().unwrap_or(0);

    // The baseline: the same dump, in memory, encrypted and sent at once.
    let tenants = state.tenants();
    let dump_dir = tempfile::tempdir()?;
    let dump = dump_dir.path().join("dump");
    let server = state.services().catalog.list_servers().await?.remove(0);
    let config = tenants.provisioner().admin_config(&server, &db)?;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("backups")
        .with_endpoint(&endpoint)
        .with_region("us-east-1")
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .with_allow_http(true)
        .build()?;
    let before = rss_bytes();
    let sampler = Sampler::start();
    let started = Instant::now();
    // The same dump as the service's, timed with the rest.
    tenants.dump_tools().dump(&config, &dump).await?;
    let plain = tokio::fs::read(&dump).await?;
    let recipient = age::x25519::Identity::generate().to_public();
    let sealed = age::encrypt(&recipient, &plain)?;
    drop(plain);
    store
        .put(
            &object_store::path::Path::from("baseline/dump.age"),
            sealed.into(),
        )
        .await?;
    let baseline_secs = started.elapsed().as_secs_f64();
    let baseline_peak = sampler.peak().saturating_sub(before);
    drop(sampler);

    println!("archive: {:.0} MiB stored", mib(object_bytes as u64));
    println!("| design | peak RSS above start | time |");
    println!("|---|---|---|");
    println!(
        "| service (dump file, streamed encryption and multipart upload) | {:.1} MiB | {service_secs:.1} s |",
        mib(service_peak)
    );
    println!(
        "| baseline (the same dump, read into memory, age::encrypt, one PUT) | {:.1} MiB | {baseline_secs:.1} s |",
        mib(baseline_peak)
    );
    println!(
        "ratio (service / baseline peak RSS): {:.3}",
        service_peak as f64 / baseline_peak.max(1) as f64
    );
    Ok(())
}
