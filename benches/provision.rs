//! Tenant creation latency: `POST /v1/tenants` against its baseline, a raw
//! `CREATE DATABASE … TEMPLATE ai_care_tenant_template` on the same server,
//! in the same run. Runs twice: on a durable cluster (fsync on, as in
//! production) and on a throwaway one (fsync off, as in the tests).
//!
//! Usage: `cargo bench --bench provision [-- ROUNDS]` (default 40).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tenant_plane::auth::{Claims, JwtKeys, Role};
use tenant_plane::config::Settings;
use tenant_plane::startup::Application;

const JWT_SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(40);
    println!("| cluster | what | n | median | p90 | ratio of medians |");
    println!("|---|---|---|---|---|---|");
    for durable in [true, false] {
        run(durable, rounds).await?;
    }
    Ok(())
}

async fn run(durable: bool, rounds: usize) -> anyhow::Result<()> {
    let (_dir, cluster) = common::start_cluster("tp-bench-", durable).await?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        database_url: Some(cluster.dsn("tenant_plane")),
        jwt_secret: Some(SecretString::from(JWT_SECRET)),
        master_key: Some(SecretString::from(MASTER_KEY)),
        ..Settings::default()
    };
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    // Baseline: the bare clone, on its own connection to the same server.
    let (admin, connection) = tokio_postgres::connect(
        cluster.dsn("postgres").expose_secret(),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    let mut raw = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let started = Instant::now();
        admin
            .batch_execute(&format!(
                "CREATE DATABASE bench_raw_{i} TEMPLATE ai_care_tenant_template"
            ))
            .await?;
        raw.push(started.elapsed());
    }

    let token = JwtKeys::hs256(&SecretString::from(JWT_SECRET))?.sign(&Claims::new(
        "bench",
        Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(3600),
    ))?;
    let client = reqwest::Client::new();
    let mut api = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/v1/tenants"))
            .bearer_auth(&token)
            .json(
                &serde_json::json!({ "name": format!("Bench {i}"), "slug": format!("bench-{i}") }),
            )
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "create failed: {}",
            response.text().await?
        );
        api.push(started.elapsed());
    }
    let label = if durable {
        "durable (fsync on)"
    } else {
        "throwaway (fsync off)"
    };
    let raw_median = report(label, "raw CREATE DATABASE … TEMPLATE", &mut raw, None);
    report(label, "POST /v1/tenants", &mut api, Some(raw_median));
    drop(admin);
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    Ok(())
}

fn report(
    cluster: &str,
    what: &str,
    samples: &mut [Duration],
    baseline: Option<Duration>,
) -> Duration {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    let ratio = baseline.map_or("1.00 (baseline)".to_string(), |b| {
        format!("{:.2}", median.as_secs_f64() / b.as_secs_f64())
    });
    println!(
        "| {cluster} | {what} | {} | {:.1} ms | {:.1} ms | {ratio} |",
        samples.len(),
        median.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3
    );
    median
}
