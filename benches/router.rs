//! Router overhead, in one run, at concurrency 8:
//!
//! - `GET /v1/agents/{id}` through the service (JWT, tenant route, budgeted
//!   pool, transaction with the RLS settings) against a bare actix-web handler
//!   running the same statements (cached and pipelined alike) on one static
//!   deadpool pool, and with Zipf traffic also on one static pool per tenant;
//! - with 1 tenant, and with 100 tenants under Zipf(1.1) traffic, each after
//!   a 2 s warm-up that is not measured, in 3 rounds whose order rotates
//!   (medians reported; ratios are the median of the per-round ratios);
//! - cold start (the first request after the tenant's pool was evicted)
//!   beside `pgbench -C`'s connection time on the same server;
//! - a quiet tenant's p99 alone and while a free-tier tenant floods.
//!
//! Usage: `cargo bench --bench router [-- SECONDS]` (default 5 per round).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tenant_plane::auth::{Claims, JwtKeys, Role};
use tenant_plane::config::Settings;
use tenant_plane::domain::{Slug, TenantId, TenantName, Tier};
use tenant_plane::startup::Application;
use tenant_plane::tenants::NewTenantInput;

const JWT_SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const CONCURRENCY: usize = 8;
/// Measured rounds per scenario, router and bare handler alternating.
const ROUNDS: usize = 3;
/// Unmeasured load before each measured window.
const WARM_UP: Duration = Duration::from_secs(2);
/// The service's own statements for `GET /v1/agents/{id}`.
const ENTER: &str =
    "SELECT set_config('app.subtenant_id', $1, true), set_config('app.user_id', $2, true)";
const SELECT: &str = "SELECT id, subtenant_id, name, type, configuration, owner, created_at, updated_at FROM agents WHERE id = $1 AND ($2::text IS NULL OR owner = $2)";

struct Target {
    tenant: TenantId,
    agent: uuid::Uuid,
    token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let window = Duration::from_secs(secs);
    let (dir, cluster) = common::start_cluster_with("tp-bench-router-", false, 800).await?;
    let base_settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        database_url: Some(cluster.dsn("tenant_plane")),
        jwt_secret: Some(SecretString::from(JWT_SECRET)),
        master_key: Some(SecretString::from(MASTER_KEY)),
        ..Settings::default()
    };
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

    let keys = JwtKeys::hs256(&SecretString::from(JWT_SECRET))?;
    let mut targets = Vec::new();
    for i in 0..100 {
        let tier = if i == 2 { Tier::Free } else { Tier::Standard };
        let view = state
            .tenants()
            .create(NewTenantInput {
                name: TenantName::parse(&format!("Router {i}")).expect("name"),
                slug: Slug::parse(&format!("router-{i}")).expect("slug"),
                tier,
                settings: Default::default(),
            })
            .await?;
        let db = view.database.expect("database");
        let (admin, conn) =
            tokio_postgres::connect(cluster.dsn(&db).expose_secret(), tokio_postgres::NoTls)
                .await?;
        tokio::spawn(conn);
        let agent = uuid::Uuid::now_v7();
        admin
            .execute(
                "INSERT INTO agents (id, name, type, owner) VALUES ($1, 'bench', 'chat', 'bench')",
                &[&agent],
            )
            .await?;
        let token = keys.sign(&Claims::new(
            "bench",
            Role::TenantAdmin,
            Some(view.id),
            None,
            Duration::from_secs(3600),
        ))?;
        targets.push(Target {
            tenant: view.id,
            agent,
            token,
        });
    }
    let targets = Arc::new(targets);

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
    let bare = HttpServer::new(move || {
        App::new()
            .app_data(pools.clone())
            .route("/v1/agents/{id}", web::get().to(bare_handler))
    })
    .workers(2)
    .bind(("127.0.0.1", 0))?;
    let bare_url = format!("http://127.0.0.1:{}", bare.addrs()[0].port());
    tokio::spawn(bare.run());

    println!("| scenario | handler | requests/s | p50 | p99 | throughput ratio | p99 ratio |");
    println!("|---|---|---|---|---|---|---|");
    for (label, zipf, service) in [
        ("1 tenant", false, &url),
        ("100 tenants, Zipf(1.1), budget 200", true, &url),
        ("100 tenants, Zipf(1.1), budget 50", true, &tight_url),
    ] {
        let pick = picker(targets.clone(), zipf);
        // The baseline first, then the router; with Zipf traffic also one
        // static pool per tenant.
        let mut contenders = vec![
            (
                "bare handler, one static pool",
                &bare_url,
                picker(targets.clone(), false),
            ),
            ("through the router", service, pick.clone()),
        ];
        if zipf {
            contenders.push(("bare handler, one static pool per tenant", &bare_url, pick));
        }
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
        for (i, (name, _, _)) in contenders.iter().enumerate() {
            let per_round = |f: fn(&LoadResult) -> f64| {
                median(
                    runs[i]
                        .iter()
                        .zip(&runs[0])
                        .map(|(r, b)| f(r) / f(b))
                        .collect(),
                )
            };
            let med = |f: fn(&LoadResult) -> f64| median(runs[i].iter().map(f).collect());
            println!(
                "| {label} | {name} | {:.0} | {:.2} ms | {:.2} ms | {:.2} | {:.2} |",
                med(|r| r.rps),
                med(|r| r.p50),
                med(|r| r.p99),
                per_round(|r| r.rps),
                per_round(|r| r.p99),
            );
        }
    }

    // Cold starts: the first request after eviction opens a pool and a session.
    let client = reqwest::Client::new();
    let mut cold = Vec::new();
    for t in targets.iter().skip(10).take(30) {
        state.router().close_pool(t.tenant).await;
        let started = Instant::now();
        let r = client
            .get(format!("{url}/v1/agents/{}", t.agent))
            .bearer_auth(&t.token)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "cold request failed");
        cold.push(started.elapsed().as_secs_f64() * 1e3);
    }
    cold.sort_by(|a, b| a.total_cmp(b));
    let script = dir.path().join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n")?;
    let out = std::process::Command::new(cluster.binaries().tool("pgbench"))
        .args([
            "-n",
            "-C",
            "-t",
            "200",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-f",
        ])
        .arg(&script)
        .args([
            "-p",
            &cluster.port().to_string(),
            &tenant_plane::domain::DbName::for_tenant(targets[0].tenant).to_string(),
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let connect = text
        .lines()
        .find(|l| l.contains("average connection time"))
        .unwrap_or("average connection time = ? ms")
        .trim()
        .to_string();
    println!();
    println!("| cold start | value |");
    println!("|---|---|");
    println!(
        "| first request after eviction, median of {} | {:.2} ms |",
        cold.len(),
        cold[cold.len() / 2]
    );
    println!(
        "| first request after eviction, p90 | {:.2} ms |",
        cold[cold.len() * 9 / 10]
    );
    println!("| pgbench -C, same server: {connect} | |");

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
        let flood = tokio::spawn(async move {
            load_paced(&flood_url, &picker(noisy, false), window, workers, pace).await
        });
        let crowded = load(&limited_url, &picker(quiet.clone(), false), window, 2).await?;
        let flood = flood.await??;
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

async fn bare_handler(
    pools: web::Data<std::collections::HashMap<uuid::Uuid, deadpool_postgres::Pool>>,
    id: web::Path<uuid::Uuid>,
) -> HttpResponse {
    let Some(pool) = pools.get(&id) else {
        return HttpResponse::NotFound().finish();
    };
    let mut client = pool.get().await.expect("connection");
    let tx = client.transaction().await.expect("begin");
    let (enter, select) =
        futures_util::try_join!(tx.prepare_cached(ENTER), tx.prepare_cached(SELECT))
            .expect("prepare");
    let owner: Option<&str> = None;
    let id = id.into_inner();
    let enter_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&"", &"bench"];
    let select_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&id, &owner];
    let (_, row) = futures_util::try_join!(
        tx.execute(&enter, &enter_params),
        tx.query_opt(&select, &select_params)
    )
    .expect("select");
    tx.commit().await.expect("commit");
    match row {
        Some(r) => HttpResponse::Ok().json(json!({
            "id": r.get::<_, uuid::Uuid>(0),
            "subtenant_id": r.get::<_, Option<uuid::Uuid>>(1),
            "name": r.get::<_, String>(2),
            "type": r.get::<_, String>(3),
            "configuration": r.get::<_, serde_json::Value>(4),
            "owner": r.get::<_, String>(5),
            "created_at": r.get::<_, chrono::DateTime<chrono::Utc>>(6),
            "updated_at": r.get::<_, chrono::DateTime<chrono::Utc>>(7),
        })),
        None => HttpResponse::NotFound().finish(),
    }
}

type Picker = Arc<dyn Fn(&mut rand::rngs::StdRng) -> (uuid::Uuid, String) + Send + Sync>;

fn picker(targets: Arc<Vec<Target>>, zipf: bool) -> Picker {
    let dist = Zipf::new(targets.len() as f64, 1.1).expect("zipf");
    Arc::new(move |rng| {
        let i = if zipf {
            (dist.sample(rng) as usize)
                .saturating_sub(1)
                .min(targets.len() - 1)
        } else {
            0
        };
        (targets[i].agent, targets[i].token.clone())
    })
}

struct LoadResult {
    rps: f64,
    p50: f64,
    p99: f64,
    /// Share of responses that were 429.
    refused: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn load(
    base: &str,
    pick: &Picker,
    window: Duration,
    concurrency: usize,
) -> anyhow::Result<LoadResult> {
    load_paced(base, pick, window, concurrency, None).await
}

/// Like `load`; with `pace`, each worker sends one request per `pace` at
/// most (an offered rate, as a misbehaving client would send).
async fn load_paced(
    base: &str,
    pick: &Picker,
    window: Duration,
    concurrency: usize,
    pace: Option<Duration>,
) -> anyhow::Result<LoadResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let base = base.to_string();
        let pick = pick.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(worker as u64);
            let mut latencies = Vec::new();
            let mut refused = 0usize;
            let mut next = Instant::now();
            while started.elapsed() < window {
                if let Some(pace) = pace {
                    tokio::time::sleep_until(next.into()).await;
                    next += pace;
                }
                let (agent, token) = pick(&mut rng);
                let t = Instant::now();
                let r = client
                    .get(format!("{base}/v1/agents/{agent}"))
                    .bearer_auth(token)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 429 => refused += 1,
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(r) => anyhow::bail!("unexpected status {}", r.status()),
                    Err(e) => anyhow::bail!("request failed: {e}"),
                }
                let _ = rng.random::<u8>();
            }
            Ok((latencies, refused))
        }));
    }
    let mut all = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await??;
        all.extend(l);
        refused += r;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let total = all.len() + refused;
    Ok(LoadResult {
        rps: total as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        refused: if total == 0 {
            0.0
        } else {
            refused as f64 / total as f64
        },
    })
}
