//! Load test: the real service binary (`serve`, release build) on a
//! throwaway cluster, with mixed data-plane traffic over many tenants under
//! Zipf(1.1), for a fixed time. Reports throughput, p50/p99, errors, the
//! router's pool hit ratio, peak router connections per server against the
//! budget, and the service's RSS (peak, first minute, last minute).
//!
//! Usage: `cargo bench --bench load -- [SECONDS] [TENANTS] [BUDGET]`
//! (defaults: 180 s, 1000 tenants, budget 100). Exits non-zero if any request
//! failed, connections exceeded the budget, or RSS kept growing: the
//! least-squares slope of the samples after a warm-up is over 1% of the mean
//! RSS (at least 512 kB) a minute.

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tenant_plane::auth::{Claims, JwtKeys, Role};
use tokio::io::{AsyncBufReadExt, BufReader};

const JWT_SECRET: &str = "load-secret-0123456789abcdef0123456789ab";
const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const CONCURRENCY: usize = 16;

struct Tenant {
    token: String,
    agents: Vec<String>,
}

#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    errors: Vec<String>,
}

/// Samples before this are warm-up (pools fill, caches grow) for the trend.
const RSS_WARM_UP_SECS: f64 = 30.0;
/// Growth a minute that counts as a trend: this share of the mean RSS, or
/// this many kB, whichever is larger.
const RSS_GROWTH_SHARE: f64 = 0.01;
const RSS_GROWTH_MIN_KB: f64 = 512.0;

/// The least-squares slope of `y` over `x` (0 with fewer than two points).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let secs = args.first().copied().unwrap_or(180);
    let tenants_n = args.get(1).copied().unwrap_or(1000) as usize;
    let budget = args.get(2).copied().unwrap_or(100);
    let (_dir, cluster) = common::start_cluster_with("tp-load-", false, 400).await?;
    let catalog_url = cluster.dsn("tenant_plane");

    // The service as its own process, so its RSS is its own.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"))
        .arg("serve")
        .env("TENANT_PLANE_DATABASE_URL", catalog_url.expose_secret())
        .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET)
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_LISTEN", "127.0.0.1:0")
        .env("TENANT_PLANE_ROUTER_CONNECTION_BUDGET", budget.to_string())
        .env("TENANT_PLANE_ROUTER_RATE_LIMIT_SCALE", "0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().expect("a running child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow::anyhow!("serve exited"))?;
        if let Some(url) = line.strip_prefix("tenant-plane listening on ") {
            break url.to_string();
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(30))
        .build()?;
    let keys = JwtKeys::hs256(&SecretString::from(JWT_SECRET))?;
    let admin = keys.sign(&Claims::new(
        "load",
        Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(86_400),
    ))?;

    // Tenants, eight at a time, each with two agents.
    let setup = Instant::now();
    let mut tenants = Vec::with_capacity(tenants_n);
    for chunk in (0..tenants_n).collect::<Vec<_>>().chunks(8) {
        let made = futures_util::future::join_all(chunk.iter().map(|i| {
            let (client, base, admin, keys) = (&client, &base, &admin, &keys);
            async move {
                let t: Value = client
                    .post(format!("{base}/v1/tenants"))
                    .bearer_auth(admin)
                    .json(&json!({ "name": format!("Load {i}"), "slug": format!("load-{i}") }))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let id = t["id"].as_str().unwrap_or_default().parse()?;
                let token = keys.sign(&Claims::new(
                    "load",
                    Role::TenantAdmin,
                    Some(id),
                    None,
                    Duration::from_secs(86_400),
                ))?;
                let mut agents = Vec::new();
                for kind in ["voice", "chat"] {
                    let a: Value = client
                        .post(format!("{base}/v1/agents"))
                        .bearer_auth(&token)
                        .json(&json!({ "name": format!("{kind} agent"), "type": kind }))
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    agents.push(a["id"].as_str().unwrap_or_default().to_string());
                }
                anyhow::Ok(Tenant { token, agents })
            }
        }))
        .await;
        for t in made {
            tenants.push(t?);
        }
    }
    eprintln!(
        "set up {tenants_n} tenants in {:.0} s",
        setup.elapsed().as_secs_f64()
    );
    // Warm-up, not measured: every tenant once, so routes and pools exist
    // and the first measured minute already holds the whole working set.
    for chunk in tenants.chunks(CONCURRENCY) {
        futures_util::future::join_all(chunk.iter().map(|t| {
            client
                .get(format!("{base}/v1/agents/{}", t.agents[0]))
                .bearer_auth(&t.token)
                .send()
        }))
        .await;
    }
    let tenants = Arc::new(tenants);
    let counter = |page: &str, name: &str| -> f64 {
        page.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let metrics_page = || async {
        client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await
    };
    let before = metrics_page().await?;

    // Samplers: the service's RSS and the router sessions PostgreSQL sees.
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<(f64, u64, i64)>>> = Arc::default();
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        let (pg, conn) = tokio_postgres::connect(
            cluster.dsn("postgres").expose_secret(),
            tokio_postgres::NoTls,
        )
        .await?;
        tokio::spawn(conn);
        tokio::spawn(async move {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("VmRSS:"))
                            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                    })
                    .unwrap_or(0);
                let router: i64 = pg
                    .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tenant-plane-router'", &[])
                    .await
                    .map(|r| r.get(0))
                    .unwrap_or(-1);
                samples.lock().expect("samples").push((
                    started.elapsed().as_secs_f64(),
                    rss_kb,
                    router,
                ));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // The load: each worker picks a tenant by Zipf rank, then a request.
    let window = Duration::from_secs(secs);
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|w| {
            let (client, base, tenants) = (client.clone(), base.clone(), tenants.clone());
            tokio::spawn(async move {
                let zipf = Zipf::new(tenants.len() as f64, 1.1).expect("zipf");
                let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
                let mut tally = Tally::default();
                while started.elapsed() < window {
                    let t = &tenants[(zipf.sample(&mut rng) as usize).saturating_sub(1)];
                    let agent = &t.agents[rng.random_range(0..t.agents.len())];
                    let roll: u32 = rng.random_range(0..100);
                    let req = match roll {
                        0..60 => client.get(format!("{base}/v1/agents/{agent}")),
                        60..75 => client.get(format!("{base}/v1/agents?limit=10")),
                        75..90 => client.post(format!("{base}/v1/calls")).json(
                            &json!({ "agent_id": agent, "status": "completed", "duration": 42 }),
                        ),
                        90..95 => client.get(format!("{base}/v1/calls?limit=10&agent_id={agent}")),
                        _ => client.get(format!("{base}/v1/analytics/summary")),
                    };
                    let sent = Instant::now();
                    match req.bearer_auth(&t.token).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            tally.latencies_ms.push(sent.elapsed().as_secs_f64() * 1e3);
                        }
                        Ok(r) => tally.errors.push(format!(
                            "{} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        )),
                        Err(e) => tally.errors.push(e.to_string()),
                    }
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = w.await?;
        all.latencies_ms.extend(t.latencies_ms);
        all.errors.extend(t.errors);
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sampler.await?;
    let after = metrics_page().await?;

    let hits = counter(&after, "tenant_plane_router_pool_hits_total")
        - counter(&before, "tenant_plane_router_pool_hits_total");
    let misses = counter(&after, "tenant_plane_router_pool_misses_total")
        - counter(&before, "tenant_plane_router_pool_misses_total");
    let opened = counter(&after, "tenant_plane_router_sessions_opened_total")
        - counter(&before, "tenant_plane_router_sessions_opened_total");
    all.latencies_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.latencies_ms
            .get(
                ((all.latencies_ms.len() as f64 * p) as usize)
                    .min(all.latencies_ms.len().saturating_sub(1)),
            )
            .copied()
            .unwrap_or(0.0)
    };
    let samples = samples.lock().expect("samples").clone();
    let peak_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let first_minute = samples
        .iter()
        .filter(|s| s.0 <= 60.0)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let last_minute = samples
        .iter()
        .filter(|s| s.0 >= elapsed - 60.0)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let peak_connections = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let requests = all.latencies_ms.len() + all.errors.len();

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| duration | {elapsed:.0} s, {CONCURRENCY} clients, {tenants_n} tenants, Zipf(1.1) |"
    );
    println!(
        "| mix | 60% get agent, 15% list agents, 15% create call, 5% list calls, 5% analytics |"
    );
    println!("| requests | {requests} |");
    println!(
        "| throughput | {:.0} requests/s |",
        requests as f64 / elapsed
    );
    println!("| p50 / p99 | {:.2} ms / {:.2} ms |", pct(0.50), pct(0.99));
    println!("| errors | {} |", all.errors.len());
    println!(
        "| router pool hit ratio | {:.3} ({hits:.0} hits, {misses:.0} misses) |",
        hits / (hits + misses).max(1.0)
    );
    println!(
        "| session reuse ratio | {:.3} ({opened:.0} sessions opened for {requests} requests) |",
        1.0 - opened / (requests as f64).max(1.0)
    );
    println!(
        "| peak router connections (catalog server) | {peak_connections} of a budget of {budget} |"
    );
    println!(
        "| service RSS: peak / first minute / last minute | {:.1} / {:.1} / {:.1} MiB |",
        peak_rss as f64 / 1024.0,
        first_minute as f64 / 1024.0,
        last_minute as f64 / 1024.0
    );
    // The peak of each minute, to tell a trend from a one-off step.
    let by_minute: Vec<String> = (0..(elapsed / 60.0).ceil() as usize)
        .filter_map(|m| {
            samples
                .iter()
                .filter(|s| s.0 >= m as f64 * 60.0 && s.0 < (m + 1) as f64 * 60.0)
                .map(|s| s.1)
                .max()
                .map(|peak| peak.to_string())
        })
        .collect();
    println!(
        "| service RSS peak by minute | {} kB |",
        by_minute.join(", ")
    );
    // Growth told from noise: the least-squares slope of every sample after
    // the warm-up, against a threshold, rather than one minute's peak
    // against another's (a single step, a GC-like swing, decides nothing).
    let steady: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.0 >= RSS_WARM_UP_SECS && s.1 > 0)
        .map(|s| (s.0 / 60.0, s.1 as f64))
        .collect();
    let rss_slope = slope(&steady);
    let mean_rss = steady.iter().map(|s| s.1).sum::<f64>() / (steady.len().max(1) as f64);
    let rss_threshold = RSS_GROWTH_MIN_KB.max(mean_rss * RSS_GROWTH_SHARE);
    println!(
        "| service RSS trend after {RSS_WARM_UP_SECS:.0} s | {rss_slope:+.0} kB a minute (fails over {rss_threshold:.0}) |"
    );
    for e in all.errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    let _ = child.kill().await;
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    let mut failed = Vec::new();
    if !all.errors.is_empty() {
        failed.push(format!("{} requests failed", all.errors.len()));
    }
    if peak_connections > budget as i64 {
        failed.push(format!(
            "{peak_connections} connections over a budget of {budget}"
        ));
    }
    if elapsed >= 120.0 && rss_slope > rss_threshold {
        failed.push(format!(
            "RSS grew: {rss_slope:.0} kB a minute after the warm-up, over {rss_threshold:.0}"
        ));
    }
    if !failed.is_empty() {
        anyhow::bail!("load test failed: {}", failed.join("; "));
    }
    Ok(())
}
