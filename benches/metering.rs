//! Request metering's cost, in one run, at concurrency 8: `GET /v1/agents`
//! through the service with `usage.meter_requests` on (each request counted
//! in memory and appended to the journal, flushed every 5 s) against the same
//! service with it off, on one catalog and one PostgreSQL, with 1 tenant and
//! with 100 tenants under Zipf(1.1) traffic. Each scenario is warmed up, then
//! measured in rounds whose order alternates; the ratio is the median of the
//! per-round ratios. Afterwards it counts the catalog rows metering wrote per
//! tenant and hour.
//!
//! Usage: `cargo bench --bench metering [-- SECONDS]` (default 5 per round).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/mod.rs"]
mod common;
#[path = "common/drive.rs"]
mod drive;
#[path = "common/targets.rs"]
mod targets;

use std::sync::Arc;
use std::time::Duration;

use drive::{load, median, picker};
use tenant_plane::domain::Tier;
use tenant_plane::startup::Application;

const CONCURRENCY: usize = 8;
const ROUNDS: usize = 6;
const WARM_UP: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let window = Duration::from_secs(secs);
    let (dir, cluster) = common::start_cluster_with("tp-bench-metering-", false, 800).await?;
    let mut base = common::settings(&cluster)?;
    base.router.rate_limit_scale = 0.0;
    base.router.connection_budget = 100;
    base.usage.sample_secs = 3600;
    let mut on = base.clone();
    on.data_dir = dir.path().join("on");
    on.usage.flush_secs = 5;
    let mut off = base;
    off.data_dir = dir.path().join("off");
    off.usage.meter_requests = false;
    let metered = Application::build(on).await?;
    let state = metered.state();
    let on_url = format!("http://127.0.0.1:{}", metered.port());
    tokio::spawn(metered.run_until_stopped());
    let unmetered = Application::build(off).await?;
    let off_url = format!("http://127.0.0.1:{}", unmetered.port());
    tokio::spawn(unmetered.run_until_stopped());

    let keys = common::jwt_keys()?;
    let targets = Arc::new(
        targets::with_agents(&state, &cluster, &keys, "metering", 100, |_| Tier::Standard).await?,
    );
    println!("| scenario | metering | requests/s | p50 | p99 | throughput ratio (on / off) |");
    println!("|---|---|---|---|---|---|");
    for (label, zipf) in [("1 tenant", false), ("100 tenants, Zipf(1.1)", true)] {
        let pick = picker(targets.clone(), zipf);
        for url in [&off_url, &on_url] {
            load(url, &pick, WARM_UP, CONCURRENCY).await?;
        }
        let (mut offs, mut ons, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let order = if round % 2 == 0 {
                [&off_url, &on_url]
            } else {
                [&on_url, &off_url]
            };
            let mut results = Vec::new();
            for url in order {
                results.push((url, load(url, &pick, window, CONCURRENCY).await?));
            }
            let (a, b) = match results.as_slice() {
                [(first, x), (_, y)] if *first == &off_url => (x, y),
                [(_, y), (_, x)] => (x, y),
                _ => unreachable!("two contenders"),
            };
            anyhow::ensure!(
                a.refused == 0.0 && b.refused == 0.0,
                "requests were refused"
            );
            ratios.push(b.rps / a.rps);
            offs.push((a.rps, a.p50, a.p99));
            ons.push((b.rps, b.p50, b.p99));
        }
        for (name, results, ratio) in [
            ("off", &offs, None),
            ("on", &ons, Some(median(ratios.clone()))),
        ] {
            println!(
                "| {label} | {name} | {:.0} | {:.2} ms | {:.2} ms | {} |",
                median(results.iter().map(|r| r.0).collect()),
                median(results.iter().map(|r| r.1).collect()),
                median(results.iter().map(|r| r.2).collect()),
                ratio.map_or("1 (baseline)".into(), |r| format!("{r:.3}")),
            );
        }
    }
    // Rows metering wrote: per tenant and hour, and in all.
    state.services().usage.flush().await;
    let (catalog, connection) = tokio_postgres::connect(
        secrecy::ExposeSecret::expose_secret(&cluster.dsn("tenant_plane")),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    let row = catalog
        .query_one(
            "SELECT (SELECT count(*) FROM usage_hourly), (SELECT count(DISTINCT (tenant_id, hour)) FROM usage_hourly),
                    (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM usage_hourly GROUP BY tenant_id, hour) x),
                    (SELECT count(*) FROM usage_segments), (SELECT coalesce(sum(requests_data), 0)::int8 FROM usage_hourly)",
            &[],
        )
        .await?;
    let (rows, tenant_hours, most, segments, counted): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    println!();
    println!(
        "catalog: {rows} usage rows for {tenant_hours} tenant-hours (at most {most} per tenant and hour), \
         {segments} flushed segments, {counted} requests counted"
    );
    Ok(())
}
