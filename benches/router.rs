//! Router overhead, in one run, at concurrency 8:
//!
//! - `GET /v1/agents/{id}` through the service (JWT, tenant route, budgeted
//!   pool; a tenant-wide caller's read is the query alone) against a plain
//!   actix-web handler sending the query alone on static deadpool pools (one
//!   pool with one tenant; one pool per tenant database under Zipf traffic),
//!   and against a handler sending a scoped read's four statements in one
//!   round trip (BEGIN READ ONLY, the scope, the query, COMMIT);
//! - with 1 tenant, and with 100 tenants under Zipf(1.1) traffic, each after
//!   a 2 s warm-up that is not measured, in 5 rounds whose order rotates
//!   (medians reported; ratios are the median of the per-round ratios);
//! - cold start (the first request after the tenant's pool was evicted)
//!   beside `pgbench -C`'s connection time on the same server;
//! - a quiet tenant's p99 alone and while a free-tier tenant floods.
//!
//! Usage: `cargo bench --bench router [-- SECONDS]` (default 5 per round);
//! `-- SECONDS profile[-bare][-zipf]` runs one contender alone, for a profiler;
//! `-- SECONDS noisy` runs only the noisy-neighbour scenario; `-- SECONDS
//! cold` only the cold starts (and the noisy neighbour); `-- SECONDS wrk`
//! holds one tenant's `GET /v1/agents/{id}` against the plain handlers with
//! `wrk` as the load, in a process of its own; `-- SECONDS serve` prints
//! the router's and the `row_to_json` handler's URLs and a token, then
//! serves them for SECONDS with no load of its own (for `wrk` and `perf`
//! by hand).

// The allocator the service binary ships with, for both contenders.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/bare.rs"]
mod bare;
#[path = "common/cold.rs"]
mod cold;
#[path = "common/mod.rs"]
mod common;
#[path = "common/drive.rs"]
mod drive;
#[path = "common/targets.rs"]
mod targets;
#[path = "common/wrk.rs"]
mod wrk;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use drive::{load, load_paced, picker, LoadResult, Target};
use tenant_plane::domain::{Slug, TenantName, Tier};
use tenant_plane::startup::Application;
use tenant_plane::tenants::NewTenantInput;

const CONCURRENCY: usize = 8;
/// Measured rounds per scenario, router and bare handler alternating.
const ROUNDS: usize = 5;
/// Unmeasured load before each measured window.
const WARM_UP: Duration = Duration::from_secs(2);
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let window = Duration::from_secs(secs);
    let (dir, cluster) = common::start_cluster_with("tp-bench-router-", false, 800).await?;
    let base_settings = common::settings(&cluster)?;
    let mut fast = base_settings.clone();
    fast.router.rate_limit_scale = 0.0;
    // Room for every tenant of the Zipf scenario to keep a connection or two;
    // `tight` below shows the default budget of 50 under the same traffic.
    fast.router.connection_budget = 200;
    let mut tight = fast.clone();
    tight.router.connection_budget = 50;
    let app = Application::build(fast).await?;
    let state = app.state();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let tight = Application::build(tight).await?;
    let tight_url = format!("http://127.0.0.1:{}", tight.port());
    tokio::spawn(tight.run_until_stopped());
    let limited = Application::build(base_settings).await?;
    let limited_url = format!("http://127.0.0.1:{}", limited.port());
    tokio::spawn(limited.run_until_stopped());

    let keys = common::jwt_keys()?;
    let tier_of = |i| if i == 2 { Tier::Free } else { Tier::Standard };
    let targets =
        Arc::new(targets::with_agents(&state, &cluster, &keys, "router", 100, tier_of).await?);

    // The bare handler: the same statements, cached and pipelined the same
    // way, on static pools of the tenant's pool size, each in its tenant's
    // database as the tenant's role (so row-level security costs both the
    // same). The baseline the issue names is one static pool (tenant 0's);
    // one static pool per tenant shows what database-per-tenant itself costs.
    let mut pools = std::collections::HashMap::new();
    for t in targets.iter() {
        let db = tenant_plane::domain::DbName::for_tenant(t.tenant).to_string();
        let mut pg = tokio_postgres::Config::new();
        pg.host("127.0.0.1")
            .port(cluster.port())
            .user("postgres")
            .options(format!("-c role={db}"))
            .dbname(&db);
        let pool = deadpool_postgres::Pool::builder(deadpool_postgres::Manager::new(
            pg,
            tokio_postgres::NoTls,
        ))
        .max_size(tenant_plane::router::pool_size(Tier::Standard))
        .queue_mode(deadpool::managed::QueueMode::Lifo)
        .build()?;
        pools.insert(t.agent, pool);
    }
    let pools = web::Data::new(pools);
    let bare = HttpServer::new(move || App::new().app_data(pools.clone()).configure(bare::routes))
        .workers(2)
        .bind(("127.0.0.1", 0))?;
    let bare_url = format!("http://127.0.0.1:{}", bare.addrs()[0].port());
    tokio::spawn(bare.run());

    // `profile` / `profile-bare` (`-zipf`): only the router (or only the
    // bare handler on its same statements), with one tenant (or Zipf
    // traffic over all), for `perf record`.
    if let Some(which) = std::env::args().find(|a| a.starts_with("profile")) {
        let base = if which.starts_with("profile-bare") {
            &bare_url
        } else {
            &url
        };
        let zipf = which.ends_with("-zipf");
        eprintln!("load starts");
        let r = load(base, &picker(targets.clone(), zipf), window, CONCURRENCY).await?;
        println!("{which}: {:.0} requests/s", r.rps);
        return Ok(());
    }
    if std::env::args().any(|a| a == "serve") {
        let t = &targets[0];
        println!("router {url}/v1/agents/{}", t.agent);
        println!("json {bare_url}/json/v1/agents/{}", t.agent);
        println!("token {}", t.token);
        tokio::time::sleep(window).await;
        return Ok(());
    }
    // `wrk`: one tenant's read against the plain handlers, the load from
    // `wrk` in a process of its own, in rounds whose order rotates.
    if std::env::args().any(|a| a == "wrk") {
        let t = &targets[0];
        let contenders = [
            (
                "plain handler, PostgreSQL builds the JSON (row_to_json)",
                format!("{bare_url}/json/v1/agents/{}", t.agent),
                None,
            ),
            (
                "plain handler (the query alone, the row decoded in Rust)",
                format!("{bare_url}/alone/v1/agents/{}", t.agent),
                None,
            ),
            (
                "through the router",
                format!("{url}/v1/agents/{}", t.agent),
                Some(t.token.as_str()),
            ),
        ];
        for (_, target, token) in &contenders {
            wrk::run(target, *token, 2, CONCURRENCY).await?;
        }
        let mut runs: Vec<Vec<LoadResult>> = contenders.iter().map(|_| Vec::new()).collect();
        for round in 0..ROUNDS {
            for k in 0..contenders.len() {
                let i = (k + round) % contenders.len();
                let (_, target, token) = &contenders[i];
                runs[i].push(wrk::run(target, *token, secs, CONCURRENCY).await?);
            }
        }
        println!("| load: wrk -t1 -c{CONCURRENCY}, {ROUNDS} rounds of {secs} s | handler | requests/s | p50 | p99 | throughput ratio | p99 ratio |");
        println!("|---|---|---|---|---|---|---|");
        let names: Vec<&str> = contenders.iter().map(|(name, ..)| *name).collect();
        drive::print_rows("1 tenant", &names, &runs);
        return Ok(());
    }
    // `noisy`: only the noisy-neighbour scenario.
    if !std::env::args().any(|a| a == "noisy") {
        // `cold`: only the cold starts, after every tenant was visited.
        let scenarios: &[(&str, bool, &String)] = if std::env::args().any(|a| a == "cold") {
            for t in targets.iter() {
                let r = reqwest::Client::new()
                    .get(format!("{url}/v1/agents"))
                    .bearer_auth(&t.token)
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 200, "warm-up request failed");
            }
            &[]
        } else {
            println!(
                "| scenario | handler | requests/s | p50 | p99 | throughput ratio | p99 ratio |"
            );
            println!("|---|---|---|---|---|---|---|");
            &[
                ("1 tenant", false, &url),
                ("1 tenant, against PostgreSQL's JSON", false, &url),
                ("100 tenants, Zipf(1.1), budget 200", true, &url),
                ("100 tenants, Zipf(1.1), budget 50", true, &tight_url),
            ]
        };
        for &(label, zipf, service) in scenarios {
            let pick = picker(targets.clone(), zipf);
            // The baseline first (ratios are against it): the plain handler,
            // the query alone on a static pool, what an app without
            // tenant-plane sends. Then the router, then the handler that sends
            // the four statements of a scoped read (BEGIN READ ONLY, the scope,
            // the query, COMMIT) for comparison. With one tenant each has one
            // static pool; with Zipf traffic over 100 tenant databases one
            // static pool per tenant database (one pool cannot reach 100
            // databases), and the plain handler on tenant 0's pool alone is
            // shown beside them.
            let contenders = if label.contains("JSON") {
                // Issue 33's baseline: PostgreSQL writes the row as JSON
                // (`row_to_json`, as PostgREST does) and the handler sends
                // it on untouched.
                vec![
                    (
                        "plain handler, PostgreSQL builds the JSON (row_to_json)",
                        format!("{bare_url}/json"),
                        pick.clone(),
                    ),
                    ("through the router", service.clone(), pick),
                ]
            } else if zipf {
                vec![
                    (
                        "plain handler (the query alone), one static pool per tenant",
                        format!("{bare_url}/alone"),
                        pick.clone(),
                    ),
                    ("through the router", service.clone(), pick.clone()),
                    (
                        "same-statements handler (4 statements), one static pool per tenant",
                        bare_url.clone(),
                        pick,
                    ),
                    (
                        "plain handler, one static pool, tenant 0 only",
                        format!("{bare_url}/alone"),
                        picker(targets.clone(), false),
                    ),
                ]
            } else {
                vec![
                    (
                        "plain handler (the query alone), one static pool",
                        format!("{bare_url}/alone"),
                        pick.clone(),
                    ),
                    ("through the router", service.clone(), pick.clone()),
                    (
                        "same-statements handler (4 statements), one static pool",
                        bare_url.clone(),
                        pick,
                    ),
                ]
            };
            // Warm up each (pools, caches, sessions), then measure in rounds
            // whose order rotates, so that drift on a shared machine hits all.
            for (_, base, pick) in &contenders {
                load(base, pick, WARM_UP, CONCURRENCY).await?;
            }
            let mut runs: Vec<Vec<LoadResult>> = contenders.iter().map(|_| Vec::new()).collect();
            for round in 0..ROUNDS {
                for k in 0..contenders.len() {
                    let i = (k + round) % contenders.len();
                    let (_, base, pick) = &contenders[i];
                    runs[i].push(load(base, pick, window, CONCURRENCY).await?);
                }
            }
            let names: Vec<&str> = contenders.iter().map(|(name, ..)| *name).collect();
            drive::print_rows(label, &names, &runs);
        }

        // Cold starts, against pgbench -C doing the same work (see cold.rs).
        let client = reqwest::Client::new();
        let mut evicted = Vec::new();
        for t in targets.iter().skip(10).take(30) {
            state.tenancy().router().close_pool(t.tenant).await;
            let started = Instant::now();
            let r = client
                .get(format!("{url}/v1/agents"))
                .bearer_auth(&t.token)
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "cold request failed");
            evicted.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let visited = tenant_plane::domain::DbName::for_tenant(targets[0].tenant).to_string();
        let pg_evicted = cold::pgbench(
            &cluster,
            dir.path(),
            &visited,
            &visited,
            cold::LIST_SQL,
            200,
        )?;
        // First visits: fresh tenants (cloned, never opened since), every
        // other one visited by the router, the rest by pgbench.
        let (mut first_router, mut first_pg, mut first_pg_reported) =
            (Vec::new(), Vec::new(), Vec::new());
        // And where a first visit's time goes, in-process, step by step.
        let mut steps: [Vec<f64>; 3] = Default::default();
        let mut raw: [Vec<f64>; 2] = Default::default();
        for i in 0..50 {
            let view = state
                .tenants()
                .create(NewTenantInput {
                    name: TenantName::parse(&format!("Fresh {i}")).expect("name"),
                    slug: Slug::parse(&format!("fresh-{i}")).expect("slug"),
                    tier: Tier::Standard,
                    settings: Default::default(),
                })
                .await?;
            let db = view.database.expect("database");
            if i >= 40 {
                // A plain tokio-postgres session as the tenant's HTTP
                // login, with the router's session options, and the same
                // query.
                let mut pg = tokio_postgres::Config::new();
                pg.host("127.0.0.1")
                    .port(cluster.port())
                    .user(format!("{db}_http"))
                    .dbname(&db)
                    .options(
                        "-c statement_timeout=5000 -c idle_in_transaction_session_timeout=10000",
                    );
                let t0 = Instant::now();
                let (client, conn) = pg.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                let t1 = Instant::now();
                client
                    .query(cold::LIST_SQL.trim_end_matches(";\n"), &[])
                    .await?;
                let t2 = Instant::now();
                raw[0].push((t1 - t0).as_secs_f64() * 1e3);
                raw[1].push((t2 - t1).as_secs_f64() * 1e3);
            } else if i >= 30 {
                let router = state.tenancy().router();
                let t0 = Instant::now();
                let route = router.route(view.id).await?;
                let t1 = Instant::now();
                let conn = router.connection(&route).await?;
                let t2 = Instant::now();
                let caller = tenant_plane::data::Caller {
                    tenant_id: view.id,
                    subtenant_id: None,
                    user_id: "bench".into(),
                    own_only: false,
                };
                tenant_plane::data::agents::list(&conn, &caller, None, 51).await?;
                let t3 = Instant::now();
                for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3)].into_iter().enumerate() {
                    steps[k].push((b - a).as_secs_f64() * 1e3);
                }
            } else if i % 2 == 0 {
                let token = common::admin_token(&keys, view.id)?;
                let started = Instant::now();
                let r = client
                    .get(format!("{url}/v1/agents"))
                    .bearer_auth(&token)
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 200, "first visit failed");
                first_router.push(started.elapsed().as_secs_f64() * 1e3);
            } else {
                let fresh = cold::pgbench(&cluster, dir.path(), &db, &db, cold::LIST_SQL, 1)?;
                let again = cold::pgbench(&cluster, dir.path(), &db, &db, cold::LIST_SQL, 1)?;
                first_pg.push(cold::first_visit_ms(&fresh, &again));
                first_pg_reported.push(fresh.total_ms());
            }
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            (v[v.len() / 2], v[v.len() * 9 / 10])
        };
        let (first_med, first_p90) = med(first_router);
        let (first_pg_med, _) = med(first_pg);
        let (first_pg_reported_med, _) = med(first_pg_reported);
        let (evicted_med, evicted_p90) = med(evicted);
        let [route_ms, session_ms, query_ms] = steps.map(|s| med(s).0);
        let [raw_session_ms, raw_query_ms] = raw.map(|s| med(s).0);
        println!();
        println!("| cold start (trust auth on both sides, the tenant's role, the agent list query) | router, median | router, p90 | pgbench -C, median | ratio |");
        println!("|---|---|---|---|---|");
        println!(
            "| first visit to a database cloned and never opened (15 each; pgbench: its reported latency plus its first open, see cold.rs) | {first_med:.2} ms | {first_p90:.2} ms | {first_pg_med:.2} ms | {:.2} |",
            first_med / first_pg_med
        );
        println!(
            "| the same, against the latency pgbench reports for it (a second visit) | {first_med:.2} ms | {first_p90:.2} ms | {first_pg_reported_med:.2} ms | {:.2} |",
            first_med / first_pg_reported_med
        );
        println!(
            "| first request after the pool was evicted (30; pgbench: 200 sessions, {:.2} ms of each to connect) | {evicted_med:.2} ms | {evicted_p90:.2} ms | {:.2} ms | {:.2} |",
            pg_evicted.connect_ms,
            pg_evicted.total_ms(),
            evicted_med / pg_evicted.total_ms()
        );
        println!(
            "| first visit, in-process, by step (medians of 10): route {route_ms:.2} ms, pool and session {session_ms:.2} ms, the query {query_ms:.2} ms | | | | |"
        );
        println!(
            "| first visit, a plain tokio-postgres session (medians of 10): session {raw_session_ms:.2} ms, the query {raw_query_ms:.2} ms | | | | |"
        );
    }

    // Noisy neighbour, with rate limits on: tenant 2 (free tier, 20 req/s)
    // floods, first at 25 times its quota (500 req/s offered), then as fast
    // as this machine's two cores can send.
    let quiet = Arc::new(vec![Target {
        tenant: targets[1].tenant,
        agent: targets[1].agent,
        token: targets[1].token.clone(),
    }]);
    let noisy = Arc::new(vec![Target {
        tenant: targets[2].tenant,
        agent: targets[2].agent,
        token: targets[2].token.clone(),
    }]);
    let alone = load(&limited_url, &picker(quiet.clone(), false), window, 2).await?;
    println!();
    println!("| noisy neighbour (rate limits on) | flood offered | refused with 429 | quiet tenant p99 | p99 ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| quiet tenant alone | - | - | {:.2} ms | 1.00 |",
        alone.p99
    );
    for (label, workers, pace) in [
        (
            "free-tier tenant at 25x its quota",
            5,
            Some(Duration::from_millis(10)),
        ),
        ("free-tier tenant as fast as 6 clients can send", 6, None),
    ] {
        let flood_url = limited_url.clone();
        let noisy = noisy.clone();
        // The flooder gets its own runtime (as another process would have),
        // so the quiet tenant's client never waits in a queue behind the
        // flood's tasks; the two still share the machine's cores.
        let flood = std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(load_paced(
                    &flood_url,
                    &picker(noisy, false),
                    window,
                    workers,
                    pace,
                ))
        });
        let crowded = load(&limited_url, &picker(quiet.clone(), false), window, 2).await?;
        let flood = tokio::task::spawn_blocking(move || flood.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the flood thread panicked"))??;
        println!(
            "| {label} | {:.0} req/s | {:.0}% | {:.2} ms | {:.2} |",
            flood.rps,
            flood.refused * 100.0,
            crowded.p99,
            crowded.p99 / alone.p99
        );
    }
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    Ok(())
}
