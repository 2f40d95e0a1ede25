//! The connection budget while sessions are closed and opened back to back:
//! PostgreSQL's own count of the router's sessions never passes the budget,
//! because a closed session's permit comes back only once its backend has
//! exited (`pg::ClosingSocket`), not when our side of the socket closes;
//! nor when a request gives up on a session still logging in.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::spawn_app_with;
use crate::kit::{call, id};

const BUDGET: u32 = 3;
const TENANTS: usize = 9;

#[tokio::test]
async fn sessions_closed_and_opened_back_to_back_at_the_budget_never_count_more_than_the_budget_in_pg_stat_activity(
) {
    let app = spawn_app_with(|s| {
        s.router.connection_budget = BUDGET;
        s.router.rate_limit_scale = 0.0;
    })
    .await;
    let mut tokens = Vec::new();
    let mut databases = Vec::new();
    for i in 0..TENANTS {
        let t = app.create_tenant(&format!("churn-{i}"), json!({})).await;
        databases.push(t["database"].as_str().unwrap().to_string());
        tokens.push(app.token(Role::TenantAdmin, Some(id(&t)), None));
    }

    // PostgreSQL's count, sampled as fast as one session can ask.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicI64::new(0));
    let samples = Arc::new(AtomicI64::new(0));
    let sampler = {
        let admin = app.server.connect("postgres").await;
        let (stop, peak, samples) = (stop.clone(), peak.clone(), samples.clone());
        let databases = databases.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let open = crate::kit::tenant_db::router_sessions(&admin, &databases).await;
                peak.fetch_max(open, Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // More tenants than permits, each worker walking them in its own order:
    // nearly every request closes another tenant's idle session and opens
    // one for its own at once.
    let until = Instant::now() + Duration::from_secs(6);
    let workers = (0..BUDGET as usize + 1).map(|w| {
        let (app, tokens) = (&app, &tokens);
        async move {
            let (mut ok, mut spent) = (0, 0);
            let mut i = w;
            while Instant::now() < until {
                let response = call(
                    app,
                    Method::GET,
                    "/v1/agents",
                    &tokens[i % TENANTS],
                    None,
                    None,
                )
                .await;
                match response.status().as_u16() {
                    200 => ok += 1,
                    503 => spent += 1,
                    other => panic!("{other}: {}", response.text().await.unwrap()),
                }
                i += w + 1;
            }
            (ok, spent)
        }
    });
    let results = futures_util::future::join_all(workers).await;
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();

    let ok: u32 = results.iter().map(|r| r.0).sum();
    let peak = peak.load(Ordering::Relaxed);
    let samples = samples.load(Ordering::Relaxed);
    assert!(ok > 100, "only {ok} requests served: {results:?}");
    assert!(samples > 100, "only {samples} samples of pg_stat_activity");
    assert!(
        peak <= BUDGET as i64,
        "{peak} router sessions in pg_stat_activity against a budget of {BUDGET} ({samples} samples)"
    );
}

/// `rounds` sessions opened with `open`, each closed by dropping its client;
/// how many backends were still in `pg_stat_activity` the moment the
/// session's driver ended.
async fn backends_left_when_the_driver_ended<F, Fut, C>(rounds: usize, open: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (tokio_postgres::Client, C)>,
    C: std::future::Future + Send + 'static,
    C::Output: Send,
{
    let watcher = crate::cluster::shared().connect("postgres").await;
    let alive = watcher
        .prepare("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
        .await
        .unwrap();
    let mut left = 0;
    for _ in 0..rounds {
        let (client, driver) = open().await;
        let driver = tokio::spawn(driver);
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        drop(client);
        driver.await.unwrap();
        let count: i64 = watcher.query_one(&alive, &[&pid]).await.unwrap().get(0);
        left += count as usize;
    }
    left
}

#[tokio::test]
async fn a_closing_sessions_driver_ends_only_after_its_backend_has_left_pg_stat_activity() {
    let dsn = crate::cluster::shared().url("postgres");
    let config = tenant_plane::pg::PgConfig::parse(dsn.expose_secret()).unwrap();
    let left = backends_left_when_the_driver_ended(100, || async {
        config.connect_closing().await.unwrap()
    })
    .await;
    assert_eq!(
        left, 0,
        "{left} of 100 backends outlived their session's driver"
    );
}

/// A session whose caller gave up while its backend was still logging in
/// keeps its permit until the login has ended and the session is closed:
/// PostgreSQL counts the backend from the start of its login.
#[tokio::test]
async fn a_session_whose_request_gave_up_mid_login_keeps_its_permit_until_its_backend_has_gone() {
    let app = spawn_app_with(|s| {
        s.router.connection_budget = 1;
        s.router.rate_limit_scale = 0.0;
        s.router.acquire_timeout_ms = 300;
    })
    .await;
    let stalled = app.create_tenant("stalled-login", json!({})).await;
    let other = app.create_tenant("other-login", json!({})).await;
    let db = stalled["database"].as_str().unwrap().to_string();
    let stalled = app.token(Role::TenantAdmin, Some(id(&stalled)), None);
    let other = app.token(Role::TenantAdmin, Some(id(&other)), None);

    // A backend locks its database as it logs in; the rename holds that
    // lock, so logins to the stalled tenant's database wait for it.
    let admin = app.server.connect("postgres").await;
    admin
        .batch_execute(&format!(
            "BEGIN; ALTER DATABASE \"{db}\" RENAME TO \"{db}_h\""
        ))
        .await
        .unwrap();
    // Its request gives up (the pool's create timeout) while its backend
    // still waits in its login.
    let gave_up = call(&app, Method::GET, "/v1/agents", &stalled, None, None).await;
    assert_eq!(
        gave_up.status().as_u16(),
        503,
        "{}",
        gave_up.text().await.unwrap()
    );
    // That backend still counts: the other tenant's request finds the
    // budget of one spent, and opens no second session beside it.
    let refused = call(&app, Method::GET, "/v1/agents", &other, None, None).await;
    let status = refused.status().as_u16();
    let body = refused.text().await.unwrap();
    assert_eq!(
        status, 503,
        "a second session opened beside a backend still logging in, past the budget of one: {body}"
    );
    assert!(body.contains("\"connection_budget_exhausted\""), "{body}");

    // The lock gone, the login ends, nobody wants the session: it is closed
    // and its permit comes back.
    admin.batch_execute("ROLLBACK").await.unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let response = call(&app, Method::GET, "/v1/agents", &other, None, None).await;
        match response.status().as_u16() {
            200 => break,
            503 if Instant::now() < until => {}
            other => panic!("{other}: {}", response.text().await.unwrap()),
        }
    }
    let served = call(&app, Method::GET, "/v1/agents", &stalled, None, None).await;
    assert_eq!(served.status().as_u16(), 200);
}
