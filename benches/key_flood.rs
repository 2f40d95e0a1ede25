//! API-key flood (issue 27, item 9): one tenant floods `GET /v1/agents`
//! with its own valid viewer key while quiet clients elsewhere are timed,
//! alone first and then during the flood:
//!
//! - (a) another tenant's data plane, `GET /v1/agents/{id}` with its JWT;
//! - (b) the control plane, `GET /v1/tenants/{id}` as super_admin;
//! - (c) cold routes: a first `GET /v1/agents` to tenants nobody has
//!   visited, ten per window, each tenant visited once (so their p99 is
//!   the slowest of ten).
//!
//! (a) and (b) send 50 requests a second each, one at a time; the quiet
//! side is 127.0.0.1, the flooder 127.0.0.2. The flooder's tenant is on the
//! free tier, so most of its requests are its own 429 `rate_limited`: the
//! point is what they cost everyone else before they are refused.
//!
//! Two designs in one run, on one durable cluster and one catalog:
//! - service: the real application, default settings (rate limits on);
//! - baseline: the plainest app, and the service before this issue: every
//!   API-key request reads its key from the catalog over the one shared
//!   8-connection pool (`common/key_baseline.rs`).
//!
//! A reference run floods the service with `GET /healthz` instead (no
//! credential, no catalog, no tenant) at the same rate: what that many
//! requests cost the quiet side on a machine whose two cores the flooder,
//! the service and PostgreSQL share.
//!
//! Also reported: the catalog pool's waiters during the flood (1 ms
//! samples), and the catalog transactions each flood request cost: the
//! commits of the flood window less those of the quiet traffic and the
//! background (measured in the quiet window and while idle), read from
//! `pg_stat_database` after the statistics settle, and the reads of
//! `api_keys` (`pg_stat_user_tables`) per flood request.
//!
//! Usage: `cargo bench --bench key_flood -- [REQUESTS] [RATE]` (defaults
//! 100,000 and 2,000 a second; RATE 0 sends as fast as 32 connections can).

#[path = "common/mod.rs"]
mod common;
#[path = "common/drive.rs"]
mod drive;
#[path = "common/key_baseline.rs"]
mod key_baseline;
#[path = "common/key_flood_drive.rs"]
mod key_flood_drive;
#[path = "common/targets.rs"]
mod targets;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use secrecy::ExposeSecret;
use tenant_plane::auth::{Claims, Role};
use tenant_plane::domain::Tier;
use tenant_plane::startup::Application;

use drive::Target;
use key_flood_drive::{catalog_counts, flood, quiet_window, Flood, Quiet, Stream, Window};

/// The quiet window's length.
const QUIET_SECS: u64 = 20;
/// Cold tenants visited in each window.
/// Ten: the service's pools for every cold tenant of its two runs, with
/// the quiet and flooding tenants', stay within the default connection
/// budget (50), so no visit waits for another tenant's session to close.
const COLD_PER_WINDOW: usize = 10;
/// Long enough for every backend's pending statistics to reach
/// `pg_stat_database` (an idle backend flushes them after 10 s).
const SETTLE: Duration = Duration::from_secs(11);

struct Design {
    name: &'static str,
    quiet: Window,
    during: Window,
    flood: Flood,
    /// Catalog commits in the flood window, all of them.
    commits: i64,
    /// Catalog commits owed to the flood, per flood request.
    commits_per_request: f64,
    key_reads_per_request: f64,
}

/// Measures one design: the background, the quiet window, the flood.
#[allow(clippy::too_many_arguments)]
async fn measure(
    name: &'static str,
    quiet: &Quiet,
    flood_path: &str,
    key: &str,
    cold: (Vec<Target>, Vec<Target>),
    requests: usize,
    rate: f64,
    watch: &tokio_postgres::Client,
    waiting: impl Fn() -> usize + Send + Sync + 'static,
) -> anyhow::Result<Design> {
    // Warm (a) and (b): their first requests build the route and pool.
    let warm = key_flood_drive::client([127, 0, 0, 1].into());
    let mut scratch = Stream::default();
    for _ in 0..20 {
        let (base, t) = (&quiet.base, &quiet.tenant);
        scratch
            .get(&warm, &format!("{base}/v1/agents/{}", t.agent), &t.token)
            .await;
        scratch
            .get(
                &warm,
                &format!("{base}/v1/tenants/{}", t.tenant),
                &quiet.super_admin,
            )
            .await;
    }
    anyhow::ensure!(
        scratch.error_count() == 0,
        "{name}: warm-up failed: {:?}",
        scratch.errors
    );
    // The background: what the catalog commits with nobody asking.
    tokio::time::sleep(SETTLE).await;
    let idle_from = catalog_counts(watch).await?;
    tokio::time::sleep(SETTLE).await;
    let quiet_from = catalog_counts(watch).await?;
    let background = (quiet_from.0 - idle_from.0, quiet_from.1 - idle_from.1);

    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(QUIET_SECS)).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    let cold_every = Duration::from_secs(QUIET_SECS) / COLD_PER_WINDOW as u32;
    let quiet_result = quiet_window(quiet, cold.0, cold_every, stop).await;
    let quiet_secs = started.elapsed().as_secs_f64();
    timer.await?;
    tokio::time::sleep(SETTLE).await;
    let flood_from = catalog_counts(watch).await?;
    // The quiet traffic's own commits a second.
    let quiet_rate = (flood_from.0 - quiet_from.0 - background.0) as f64 / quiet_secs;

    let done = Arc::new(AtomicBool::new(false));
    let expected = if rate > 0.0 {
        requests as f64 / rate
    } else {
        6.0
    };
    let cold_every = Duration::from_secs_f64(expected / COLD_PER_WINDOW as f64);
    let (during, flood) = tokio::join!(
        quiet_window(quiet, cold.1, cold_every, done.clone()),
        flood(&quiet.base, flood_path, key, requests, rate, done, waiting),
    );
    tokio::time::sleep(SETTLE).await;
    let flood_to = catalog_counts(watch).await?;
    let commits = flood_to.0 - flood_from.0;
    let owed = commits as f64 - background.0 as f64 - quiet_rate * flood.secs;
    let key_reads = flood_to.1 - flood_from.1 - background.1;
    Ok(Design {
        name,
        quiet: quiet_result,
        during,
        flood,
        commits,
        commits_per_request: owed / requests as f64,
        key_reads_per_request: key_reads as f64 / requests as f64,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let requests = args.first().copied().unwrap_or(100_000);
    let rate = args.get(1).copied().unwrap_or(2_000) as f64;
    let (_dir, cluster) = common::start_cluster_with("tp-bench-key-flood-", true, 300).await?;
    let keys = common::jwt_keys()?;
    let super_admin = keys.sign(&Claims::new(
        "operator",
        Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(3600),
    ))?;

    let app = Application::build(common::settings(&cluster)?).await?;
    let state = app.state();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let flooder = targets::with_agents(&state, &cluster, &keys, "flooder", 1, |_| Tier::Free)
        .await?
        .remove(0);
    let quiet_tenant =
        targets::with_agents(&state, &cluster, &keys, "quiet", 1, |_| Tier::Standard)
            .await?
            .remove(0);
    let mut cold =
        targets::with_agents(&state, &cluster, &keys, "cold", 6 * COLD_PER_WINDOW, |_| {
            Tier::Standard
        })
        .await?;
    let mut cold_set = || cold.drain(..COLD_PER_WINDOW).collect::<Vec<_>>();

    // The flooder's key, minted as a user mints one.
    let http = reqwest::Client::new();
    let minted: serde_json::Value = http
        .post(format!("{url}/v1/tenants/{}/api-keys", flooder.tenant))
        .bearer_auth(&super_admin)
        .json(&serde_json::json!({ "name": "flood", "role": "viewer" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let key = minted["key"]
        .as_str()
        .expect("the key is in the response")
        .to_string();
    let check = http
        .get(format!("{url}/v1/agents"))
        .bearer_auth(&key)
        .send()
        .await?;
    anyhow::ensure!(
        check.status() == 200,
        "the key is refused: {}",
        check.status()
    );

    let catalog_dsn = cluster.dsn("tenant_plane");
    let (watch, conn) =
        tokio_postgres::connect(catalog_dsn.expose_secret(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let mut designs = Vec::new();
    let quiet = Quiet {
        base: url.clone(),
        tenant: Arc::new(quiet_tenant),
        super_admin: super_admin.clone(),
    };
    for (name, flood_path) in [("service", "/v1/agents"), ("reference", "/healthz")] {
        let pool_state = state.clone();
        designs.push(
            measure(
                name,
                &quiet,
                flood_path,
                &key,
                (cold_set(), cold_set()),
                requests,
                rate,
                &watch,
                move || pool_state.services().catalog.pool().status().waiting,
            )
            .await?,
        );
    }

    let baseline = web::Data::new(key_baseline::Baseline::new(
        catalog_dsn.expose_secret(),
        common::jwt_keys()?,
    )?);
    let catalog_pool = baseline.catalog.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(baseline.clone())
            .configure(key_baseline::routes)
    })
    .workers(2)
    .bind("127.0.0.1:0")?;
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    let quiet = Quiet {
        base: format!("http://127.0.0.1:{port}"),
        ..quiet
    };
    designs.push(
        measure(
            "baseline",
            &quiet,
            "/v1/agents",
            &key,
            (cold_set(), cold_set()),
            requests,
            rate,
            &watch,
            move || catalog_pool.status().waiting,
        )
        .await?,
    );
    report(&designs, requests, rate);
    Ok(())
}

fn report(designs: &[Design], requests: usize, rate: f64) {
    let pace = if rate > 0.0 {
        format!("{rate} a second")
    } else {
        "unpaced".into()
    };
    println!("\nkey flood: {requests} × GET /v1/agents with one free-tier tenant's viewer key, {pace}, at most 32 in flight;");
    println!("quiet: (a) GET /v1/agents/{{id}} and (b) GET /v1/tenants/{{id}} at 50 a second each, (c) first visits to cold tenants ({COLD_PER_WINDOW} a window: their p99 is the slowest);");
    println!(
        "reference: the service flooded with GET /healthz (no key, no catalog) at the same rate\n"
    );
    println!(
        "{:<9} {:<18} {:>17} {:>17} {:>9} {:>15} {:>11}",
        "design",
        "stream",
        "quiet p50/p99 ms",
        "during p50/p99 ms",
        "p99 ratio",
        "errors q/d",
        "n q/d"
    );
    for d in designs {
        for (label, q, f) in streams(d) {
            println!(
                "{:<9} {:<18} {:>17} {:>17} {:>9.2} {:>15} {:>11}",
                d.name,
                label,
                format!("{:.2}/{:.2}", q.percentile(0.5), q.percentile(0.99)),
                format!("{:.2}/{:.2}", f.percentile(0.5), f.percentile(0.99)),
                f.percentile(0.99) / q.percentile(0.99),
                format!("{}/{}", q.error_count(), f.error_count()),
                format!("{}/{}", q.latencies.len(), f.latencies.len()),
            );
        }
    }
    println!();
    for d in designs {
        println!(
            "{}: flood {:.1} s, statuses {:?}; catalog pool waiters in {:.1}% of samples, most {}; \
             catalog commits in the flood window {}, owed to the flood {:.4} a request; api_keys reads {:.4} a request",
            d.name,
            d.flood.secs,
            d.flood.statuses,
            d.flood.wait_share * 100.0,
            d.flood.max_waiting,
            d.commits,
            d.commits_per_request,
            d.key_reads_per_request,
        );
        for (label, q, f) in streams(d) {
            if q.error_count() + f.error_count() > 0 {
                println!(
                    "  {label} errors: quiet {:?}, during {:?}",
                    q.errors, f.errors
                );
            }
        }
    }
    let (service, baseline) = (&designs[0], &designs[designs.len() - 1]);
    println!();
    for ((label, _, s), (_, _, b)) in streams(service).into_iter().zip(streams(baseline)) {
        println!(
            "{label}: during-flood p99 service {:.2} ms vs baseline {:.2} ms ({:.2}×)",
            s.percentile(0.99),
            b.percentile(0.99),
            s.percentile(0.99) / b.percentile(0.99),
        );
    }
    let verdicts: Vec<String> = streams(service)
        .into_iter()
        .map(|(label, q, f)| {
            let ratio = f.percentile(0.99) / q.percentile(0.99);
            let errors = q.error_count() + f.error_count();
            let held = ratio <= 2.0 && errors == 0;
            format!(
                "{} {ratio:.2} ({errors} errors, {})",
                &label[..3],
                if held { "held" } else { "MISSED" }
            )
        })
        .collect();
    println!(
        "\nservice p99 during/quiet (target ≤ 2.0 with 0 errors): {}",
        verdicts.join(", ")
    );
}

fn streams(d: &Design) -> [(&'static str, &Stream, &Stream); 3] {
    [
        ("(a) data plane", &d.quiet.data, &d.during.data),
        ("(b) control plane", &d.quiet.control, &d.during.control),
        ("(c) cold routes", &d.quiet.cold, &d.during.cold),
    ]
}
