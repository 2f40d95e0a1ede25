//! Tight budgets against their physical limit, in one run, at concurrency 8.
//!
//! When a server's connection budget B is below the active set, a request
//! that finds no idle session of its tenant opens one (closing another
//! tenant's idle session to stay within B). So the best throughput any
//! router can reach is
//!
//!   1 / (hit ratio × warm cost + miss ratio × session-start cost)
//!
//! where, measured in the same run:
//! - the *warm cost* is 1 / the router's own throughput when every request
//!   finds an idle session (Zipf over 100 tenants, budget 200);
//! - the *session-start cost* is 1 / `pgbench -C`'s throughput at the same
//!   concurrency (a new session, the same agent query as the tenant's role,
//!   and the session's end, for every transaction);
//! - the hit ratio is the router's own (sessions opened / requests, from its
//!   `tenant_plane_router_sessions_opened_total` counter).
//!
//! It prints the router's throughput as a ratio of that model, and its hit
//! ratio beside three reference caches replayed on the same trace (LRU, an
//! ideal frequency-aware cache, Belady's optimal): 100 tenants with budget
//! 50, and 1,000 tenants with budget 100, each Zipf(1.1).
//!
//! Usage: `cargo bench --bench tight [-- SECONDS]` (default 5 per round).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/caches.rs"]
mod caches;
#[path = "common/mod.rs"]
mod common;
#[path = "common/drive.rs"]
mod drive;
#[path = "common/targets.rs"]
mod targets;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drive::{load, median, Picker, Target};
use rand_distr::{Distribution, Zipf};
use tenant_plane::domain::{DbName, Tier};
use tenant_plane::startup::Application;

const CONCURRENCY: usize = 8;
const ROUNDS: usize = 3;
const WARM_UP: Duration = Duration::from_secs(2);

/// Zipf(1.1) over the first `n` targets, recording each pick's rank.
fn recording_picker(targets: Arc<Vec<Target>>, n: usize, trace: Arc<Mutex<Vec<u32>>>) -> Picker {
    let dist = Zipf::new(n as f64, 1.1).expect("zipf");
    Arc::new(move |rng| {
        let i = (dist.sample(rng) as usize).saturating_sub(1).min(n - 1);
        trace.lock().expect("trace").push(i as u32);
        (targets[i].agent, targets[i].token.clone())
    })
}

/// The router's sessions opened so far (a process-wide counter).
async fn sessions_opened(url: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("tenant_plane_router_sessions_opened_total "))
        .map(|v| v.trim().parse())
        .transpose()?
        .unwrap_or(0.0))
}

/// pgbench -C at the bench's concurrency: sessions started per second, each
/// running the agent query once as the tenant's role.
fn session_starts_per_second(
    cluster: &tenant_plane::local_pg::LocalCluster,
    dir: &std::path::Path,
    target: &Target,
    secs: u64,
) -> anyhow::Result<f64> {
    let db = DbName::for_tenant(target.tenant).to_string();
    let script = dir.join("session-start.sql");
    // The agent query of `GET /v1/agents/{id}`.
    std::fs::write(
        &script,
        format!(
            "SELECT id, subtenant_id, name, type, configuration, owner, created_at, updated_at FROM agents WHERE id = '{}' AND (NULL::text IS NULL OR owner = NULL);\n",
            target.agent
        ),
    )?;
    let out = Command::new(cluster.binaries().tool("pgbench"))
        .args(["-n", "-C", "-c", &CONCURRENCY.to_string(), "-j", "2"])
        .args(["-T", &secs.to_string(), "-h", "127.0.0.1"])
        .args(["-p", &cluster.port().to_string(), "-U", &db])
        .arg("-f")
        .arg(&script)
        .arg(&db)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .ok_or_else(|| anyhow::anyhow!("pgbench printed no tps: {text}"))?;
    line["tps = ".len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot read `{line}`"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let window = Duration::from_secs(secs);
    caches::check();
    let (dir, cluster) = common::start_cluster_with("tp-bench-tight-", false, 500).await?;
    let base = common::settings(&cluster)?;
    let with_budget = |budget: u32| {
        let mut s = base.clone();
        s.router.rate_limit_scale = 0.0;
        s.router.connection_budget = budget;
        s
    };
    // The first application installs the process's metrics recorder, so
    // every application's counters are read from its `/metrics`.
    let warm = Application::build(with_budget(200)).await?;
    let state = warm.state();
    let warm_url = format!("http://127.0.0.1:{}", warm.port());
    tokio::spawn(warm.run_until_stopped());

    let tenants: usize = 1000;
    eprintln!("creating {tenants} tenants");
    let keys = common::jwt_keys()?;
    let targets = Arc::new(
        targets::with_agents(&state, &cluster, &keys, "tight", tenants, |_| {
            Tier::Standard
        })
        .await?,
    );

    println!("| tenants, budget | router requests/s | warm requests/s | pgbench -C sessions/s | router hit ratio | model requests/s | router / model | LRU | frequency oracle | Belady |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (n, budget) in [(100usize, 50u32), (1000, 100)] {
        let tight = Application::build(with_budget(budget)).await?;
        let tight_url = format!("http://127.0.0.1:{}", tight.port());
        let stop = tight.state();
        tokio::spawn(tight.run_until_stopped());
        let hot = recording_picker(targets.clone(), 100, Arc::default());
        load(&warm_url, &hot, WARM_UP, CONCURRENCY).await?;
        let trace = Arc::new(Mutex::new(Vec::new()));
        let pick = recording_picker(targets.clone(), n, trace.clone());
        load(&tight_url, &pick, WARM_UP, CONCURRENCY).await?;
        let mut rows: Vec<[f64; 8]> = Vec::new();
        for _ in 0..ROUNDS {
            let warm_run = load(&warm_url, &hot, window, CONCURRENCY).await?;
            let starts = session_starts_per_second(&cluster, dir.path(), &targets[0], secs)?;
            let from = trace.lock().expect("trace").len();
            let before = sessions_opened(&warm_url).await?;
            let run = load(&tight_url, &pick, window, CONCURRENCY).await?;
            let opened = sessions_opened(&warm_url).await? - before;
            let hit = 1.0 - (opened / run.requests.max(1) as f64).min(1.0);
            let model = 1.0 / (hit / warm_run.rps + (1.0 - hit) / starts);
            let recorded = trace.lock().expect("trace").clone();
            let reference = caches::replay(&recorded, from, budget as usize);
            rows.push([
                run.rps,
                warm_run.rps,
                starts,
                hit,
                model,
                reference.lru,
                reference.frequency_oracle,
                reference.optimal,
            ]);
        }
        let col = |k: usize| median(rows.iter().map(|r| r[k]).collect());
        let ratio = median(rows.iter().map(|r| r[0] / r[4]).collect());
        println!(
            "| {n}, {budget} | {:.0} | {:.0} | {:.0} | {:.3} | {:.0} | {ratio:.2} | {:.3} | {:.3} | {:.3} |",
            col(0),
            col(1),
            col(2),
            col(3),
            col(4),
            col(5),
            col(6),
            col(7)
        );
        // Its sessions go, so that the next scenario's budget is the only one.
        stop.tenancy().router().close_all().await;
    }
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    Ok(())
}
