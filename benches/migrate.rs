//! Fleet migration throughput over many tenants, in one run:
//!
//! - baseline: open a session to each tenant database, `SELECT 1`, close it;
//! - a no-op sweep of an up-to-date fleet at concurrency 1, as run by default
//!   (tenants the catalog records as current are skipped) and with `verify`
//!   (every tenant database opened and checked);
//! - one additive DDL migration over the fleet at concurrency 1, 2, 4 and 8
//!   (a new version each time), with the speed-up against concurrency 1.
//!
//! Usage: `cargo bench --bench migrate [-- TENANTS]` (default 1000).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tenant_plane::config::Settings;
use tenant_plane::domain::{Slug, TenantName, Tier};
use tenant_plane::fleet::FleetOptions;
use tenant_plane::services::Services;
use tenant_plane::tenants::NewTenantInput;

const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const V1: &str = include_str!("../tenant_template/migrations/V1__tenant_schema.sql");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tenants: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let (_dir, cluster) = common::start_cluster("tp-bench-migrate-", true).await?;
    let migrations = tempfile::tempdir()?;
    std::fs::write(migrations.path().join("V1__tenant_schema.sql"), V1)?;
    let settings = Settings {
        database_url: Some(cluster.dsn("tenant_plane")),
        master_key: Some(SecretString::from(MASTER_KEY)),
        ..Settings::default()
    };
    let services = connect(&settings, migrations.path()).await?;

    let started = Instant::now();
    let mut databases = Vec::with_capacity(tenants);
    for chunk in (0..tenants).collect::<Vec<_>>().chunks(8) {
        let creates = chunk.iter().map(|i| {
            services.tenants.create(NewTenantInput {
                name: TenantName::parse(&format!("Bench {i}")).expect("name"),
                slug: Slug::parse(&format!("bench-{i}")).expect("slug"),
                tier: Tier::Standard,
                settings: Default::default(),
            })
        });
        for view in futures_util::future::join_all(creates).await {
            databases.push(view?.database.expect("a root tenant has a database"));
        }
    }
    eprintln!(
        "created {tenants} tenants in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // Baseline: the least a sweep can do per tenant.
    let started = Instant::now();
    for db in &databases {
        let dsn = cluster.dsn(db);
        let (client, connection) =
            tokio_postgres::connect(dsn.expose_secret(), tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(connection);
        client.simple_query("SELECT 1").await?;
        drop(client);
        let _ = driver.await;
    }
    let baseline = per_tenant(started.elapsed(), tenants);

    let noop = sweep(&services, 1, false).await?;
    let verified = sweep(&services, 1, true).await?;
    println!("| what | tenants | concurrency | wall time | per tenant | ratio |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| baseline: connect, SELECT 1, close | {tenants} | 1 | {:.1} s | {:.2} ms | 1.00 |",
        baseline * tenants as f64 / 1e3,
        baseline
    );
    println!(
        "| no-op sweep (fleet up to date) | {tenants} | 1 | {:.1} s | {:.2} ms | {:.2} of baseline |",
        noop.as_secs_f64(),
        per_tenant(noop, tenants),
        per_tenant(noop, tenants) / baseline
    );
    println!(
        "| no-op sweep with --verify (opens every tenant) | {tenants} | 1 | {:.1} s | {:.2} ms | {:.2} of baseline |",
        verified.as_secs_f64(),
        per_tenant(verified, tenants),
        per_tenant(verified, tenants) / baseline
    );

    let mut first = None;
    for (i, concurrency) in [1usize, 2, 4, 8].into_iter().enumerate() {
        let version = i + 2;
        std::fs::write(
            migrations
                .path()
                .join(format!("V{version}__add_column_{version}.sql")),
            format!("ALTER TABLE agents ADD COLUMN extra_{version} text;"),
        )?;
        let services = connect(&settings, migrations.path()).await?;
        let took = sweep(&services, concurrency, false).await?;
        let base = *first.get_or_insert(took);
        println!(
            "| additive DDL (V{version}) | {tenants} | {concurrency} | {:.1} s | {:.2} ms | speed-up {:.2}x |",
            took.as_secs_f64(),
            per_tenant(took, tenants),
            base.as_secs_f64() / took.as_secs_f64()
        );
    }
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    Ok(())
}

async fn connect(settings: &Settings, migrations: &Path) -> anyhow::Result<Services> {
    let mut settings = settings.clone();
    settings.migrations.tenant_dir = Some(migrations.to_path_buf());
    Services::connect(&settings).await
}

/// One fleet run at `concurrency`; its wall time, template included.
async fn sweep(services: &Services, concurrency: usize, verify: bool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let run = services
        .fleet
        .start(&FleetOptions {
            concurrency,
            canary: 0,
            max_failures: 0,
            verify,
            ..FleetOptions::default()
        })
        .await?;
    let summary = services.fleet.execute_run(run.id, Arc::new(|_| {})).await?;
    anyhow::ensure!(
        summary.counts.failed == 0 && summary.counts.pending == 0,
        "run failed: {summary:?}"
    );
    Ok(started.elapsed())
}

fn per_tenant(d: Duration, tenants: usize) -> f64 {
    d.as_secs_f64() * 1e3 / tenants as f64
}
