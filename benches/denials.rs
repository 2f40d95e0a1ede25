//! Denial flood: bad-token requests (default 20,000) from one client
//! address while an operator's control call (`GET /v1/tenants`, from
//! another address) is timed, before the flood and during it.
//!
//! - service: the real application; denials are counted per minute and
//!   written over a small pool of their own, and an address past its
//!   refusals gets 429 before any credential check;
//! - service, throttle off: the same, with `http.denials_per_minute` out of
//!   reach, so every bad token is checked and counted;
//! - baseline: the plainest design, and the service's own before it: a
//!   bare actix-web handler that writes one audit row per denial over the
//!   same 8-connection catalog pool the control call uses.
//!
//! A reference run floods the service with `GET /healthz` instead (no
//! credential, no catalog): what the same request rate costs the control
//! call when nothing is refused, on a machine whose cores the attacker, the
//! service and PostgreSQL share.
//!
//! Reports, per design: catalog rows added, the control call's p50/p99
//! before and during the flood (and their ratio), and the catalog pool's
//! waits during the flood (share of 1 ms samples with a waiter, most
//! waiters at once).
//!
//! The cluster is durable (fsync on), as a catalog is in production: each
//! audit row the baseline writes is a commit.
//!
//! The flood is paced at RATE requests a second (default 2,000), so every
//! design gets the same attack and the machine's two cores are not simply
//! saturated by whichever design answers fastest; RATE 0 sends as fast as
//! 32 connections can.
//!
//! Usage: `cargo bench --bench denials -- [REQUESTS] [RATE]`

#[path = "common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use secrecy::{ExposeSecret, SecretString};
use tenant_plane::auth::{Claims, JwtKeys, Role};
use tenant_plane::config::Settings;
use tenant_plane::domain::{Slug, TenantName, Tier};
use tenant_plane::startup::Application;
use tenant_plane::tenants::NewTenantInput;

const JWT_SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// Requests in flight from the attacker.
const FLOOD_CONCURRENCY: usize = 32;
/// Control calls timed before the flood.
const BEFORE_CALLS: usize = 300;
const OPERATOR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

struct Report {
    name: &'static str,
    rows: i64,
    flood_secs: f64,
    statuses: String,
    before: (f64, f64),
    during: (f64, f64),
    wait_share: f64,
    max_waiting: usize,
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn client(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from)
        .pool_max_idle_per_host(FLOOD_CONCURRENCY)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn control_call(client: &reqwest::Client, url: &str, token: &str) -> f64 {
    let started = Instant::now();
    let r = client
        .get(format!("{url}/v1/tenants?limit=50"))
        .bearer_auth(token)
        .send()
        .await
        .expect("control call");
    assert_eq!(r.status(), 200, "the control call must succeed");
    r.bytes().await.expect("body");
    started.elapsed().as_secs_f64() * 1000.0
}

/// Times control calls before and during a flood of `requests` bad tokens,
/// sampling `waiting()` (the catalog pool's waiters) every millisecond.
async fn measure(
    name: &'static str,
    url: &str,
    token: &str,
    flood_path: &'static str,
    requests: usize,
    rate: f64,
    waiting: impl Fn() -> usize + Send + Sync + 'static,
) -> Report {
    let operator = client(OPERATOR);
    let mut before = Vec::new();
    for _ in 0..BEFORE_CALLS {
        before.push(control_call(&operator, url, token).await);
    }
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let (mut samples, mut with_waiters, mut most) = (0usize, 0usize, 0usize);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                let w = waiting();
                samples += 1;
                with_waiters += usize::from(w > 0);
                most = most.max(w);
            }
            (with_waiters as f64 / samples.max(1) as f64, most)
        })
    };
    let timer = {
        let (done, operator, url, token) = (
            done.clone(),
            operator.clone(),
            url.to_string(),
            token.to_string(),
        );
        tokio::spawn(async move {
            let mut during = Vec::new();
            while !done.load(Ordering::Relaxed) {
                during.push(control_call(&operator, &url, &token).await);
            }
            during
        })
    };
    let attacker = client(ATTACKER);
    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        u16,
        usize,
    >::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..FLOOD_CONCURRENCY {
        let (attacker, next, statuses, url) = (
            attacker.clone(),
            next.clone(),
            statuses.clone(),
            url.to_string(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                if rate > 0.0 {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let r = attacker
                    .get(format!("{url}{flood_path}"))
                    .bearer_auth("not-a-valid-token")
                    .send()
                    .await
                    .expect("flood request");
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        }));
    }
    for w in workers {
        w.await.expect("flood worker");
    }
    let flood_secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let during = timer.await.expect("timer");
    let (wait_share, max_waiting) = sampler.await.expect("sampler");
    let statuses = format!("{:?}", statuses.lock().unwrap());
    Report {
        name,
        rows: 0,
        flood_secs,
        statuses,
        before: (percentile(before.clone(), 0.5), percentile(before, 0.99)),
        during: (percentile(during.clone(), 0.5), percentile(during, 0.99)),
        wait_share,
        max_waiting,
    }
}

async fn catalog_rows(client: &tokio_postgres::Client) -> anyhow::Result<i64> {
    Ok(client
        .query_one(
            "SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM denials)",
            &[],
        )
        .await?
        .get(0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let requests = args.first().copied().unwrap_or(20_000);
    let rate = args.get(1).copied().unwrap_or(2_000) as f64;
    let (_dir, cluster) = common::start_cluster_with("tp-bench-denials-", true, 300).await?;
    let keys = JwtKeys::hs256(&SecretString::from(JWT_SECRET))?;
    let admin = keys.sign(&Claims::new(
        "operator",
        Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(3600),
    ))?;
    let mut reports = Vec::new();
    for (name, throttle, flood_path, catalog_db) in [
        ("service", 60, "/v1/tenants", "tenant_plane"),
        (
            "service, throttle off",
            u32::MAX,
            "/v1/tenants",
            "tenant_plane_unthrottled",
        ),
        (
            "reference: service, /healthz flood",
            60,
            "/healthz",
            "tenant_plane_reference",
        ),
    ] {
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse()?,
            database_url: Some(cluster.dsn(catalog_db)),
            jwt_secret: Some(SecretString::from(JWT_SECRET)),
            master_key: Some(SecretString::from(MASTER_KEY)),
            ..Settings::default()
        };
        settings.http.denials_per_minute = throttle;
        let app = Application::build(settings).await?;
        let state = app.state();
        let url = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        for i in 0..50 {
            state
                .tenants()
                .create(NewTenantInput {
                    name: TenantName::parse(&format!("Denials {i}")).expect("name"),
                    slug: Slug::parse(&format!("denials-{i}")).expect("slug"),
                    tier: Tier::Standard,
                    settings: Default::default(),
                })
                .await?;
        }
        let (watch, conn) = tokio_postgres::connect(
            cluster.dsn(catalog_db).expose_secret(),
            tokio_postgres::NoTls,
        )
        .await?;
        tokio::spawn(conn);
        let rows_before = catalog_rows(&watch).await?;
        let pool_state = state.clone();
        let mut report = measure(name, &url, &admin, flood_path, requests, rate, move || {
            pool_state.services().catalog.pool().status().waiting
        })
        .await;
        state.denials().flush().await?;
        report.rows = catalog_rows(&watch).await? - rows_before;
        reports.push(report);
    }

    // The baseline: a row per denial over the control plane's own pool.
    let baseline_db = "tenant_plane_baseline";
    {
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse()?,
            database_url: Some(cluster.dsn(baseline_db)),
            jwt_secret: Some(SecretString::from(JWT_SECRET)),
            master_key: Some(SecretString::from(MASTER_KEY)),
            ..Settings::default()
        };
        settings.http.denials_per_minute = u32::MAX;
        // Builds the catalog (schema and tenants) the bare handler reads.
        let app = Application::build(settings).await?;
        let state = app.state();
        for i in 0..50 {
            state
                .tenants()
                .create(NewTenantInput {
                    name: TenantName::parse(&format!("Baseline {i}")).expect("name"),
                    slug: Slug::parse(&format!("baseline-{i}")).expect("slug"),
                    tier: Tier::Standard,
                    settings: Default::default(),
                })
                .await?;
        }
    }
    let config: tokio_postgres::Config = cluster.dsn(baseline_db).expose_secret().parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig::default(),
    );
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(Settings::default().catalog.pool_size)
        .build()?;
    let expected = format!("Bearer {admin}");
    let handler_pool = pool.clone();
    let server = HttpServer::new(move || {
        let pool = handler_pool.clone();
        let expected = expected.clone();
        App::new().route(
            "/v1/tenants",
            web::get().to(move |req: HttpRequest| {
                let (pool, expected) = (pool.clone(), expected.clone());
                async move { baseline_tenants(req, pool, expected).await }
            }),
        )
    })
    .workers(2)
    .bind("127.0.0.1:0")?;
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    let (watch, conn) = tokio_postgres::connect(
        cluster.dsn(baseline_db).expose_secret(),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    let rows_before = catalog_rows(&watch).await?;
    let waiting_pool = pool.clone();
    let mut report = measure(
        "baseline: a row per denial, shared pool",
        &format!("http://127.0.0.1:{port}"),
        &admin,
        "/v1/tenants",
        requests,
        rate,
        move || waiting_pool.status().waiting,
    )
    .await;
    report.rows = catalog_rows(&watch).await? - rows_before;
    reports.push(report);

    let pace = if rate > 0.0 {
        format!("{rate} a second")
    } else {
        "unpaced".into()
    };
    println!("\ndenial flood: {requests} bad-token requests from one address, {pace}, at most {FLOOD_CONCURRENCY} in flight;");
    println!("control call: GET /v1/tenants?limit=50 from another address, one at a time\n");
    println!(
        "{:<42} {:>10} {:>9} {:>17} {:>17} {:>9} {:>12}",
        "design",
        "rows added",
        "flood s",
        "before p50/p99 ms",
        "during p50/p99 ms",
        "p99 ratio",
        "pool waits"
    );
    for r in &reports {
        println!(
            "{:<42} {:>10} {:>9.1} {:>17} {:>17} {:>9.2} {:>12}",
            r.name,
            r.rows,
            r.flood_secs,
            format!("{:.2}/{:.2}", r.before.0, r.before.1),
            format!("{:.2}/{:.2}", r.during.0, r.during.1),
            r.during.1 / r.before.1,
            format!("{:.1}% max {}", r.wait_share * 100.0, r.max_waiting),
        );
    }
    for r in &reports {
        println!("{}: statuses {}", r.name, r.statuses);
    }
    let (service, baseline) = (&reports[1], &reports[3]);
    println!(
        "\nrows: baseline {} vs service {} ({}x fewer with the throttle off); during-flood p99: service {:.2} ms vs baseline {:.2} ms",
        baseline.rows,
        service.rows,
        baseline.rows / service.rows.max(1),
        service.during.1,
        baseline.during.1,
    );
    Ok(())
}

async fn baseline_tenants(
    req: HttpRequest,
    pool: deadpool_postgres::Pool,
    expected: String,
) -> HttpResponse {
    let client = pool.get().await.expect("catalog connection");
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if presented != expected {
        let ip = req.peer_addr().map(|a| a.ip().to_string());
        client
            .execute(
                "INSERT INTO audit_log (user_id, action, resource, ip_address, result)
                 VALUES ('anonymous', 'unauthenticated', '/v1/tenants', $1, 'failure')",
                &[&ip],
            )
            .await
            .expect("audit row");
        return HttpResponse::Unauthorized().finish();
    }
    let rows = client
        .query(
            "SELECT id, slug, name, status FROM tenants ORDER BY id LIMIT 50",
            &[],
        )
        .await
        .expect("tenants");
    let tenants: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.get::<_, uuid::Uuid>(0),
                "slug": r.get::<_, String>(1),
                "name": r.get::<_, String>(2),
                "status": r.get::<_, String>(3),
            })
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "tenants": tenants }))
}
