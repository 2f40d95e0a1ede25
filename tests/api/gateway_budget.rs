//! The gateway's sessions count against the same per-server budget as the
//! HTTP plane's: PostgreSQL's own count of the two together never passes
//! it, while clients of more tenants than permits take turns.
//!
//! Two sizes: sixty tenants behind a budget of three on the shared cluster
//! (the fast loop's), and a thousand behind a budget of fifty on a server
//! of their own, whose thousand databases (some 8 GB) leave with it. The
//! thousand come a dozen at a time, as the tenants of a job that visits
//! each in turn: each tenant's turn closes the idle sessions of tenants
//! that are done, not those of the tenants still working (the sessions
//! opened are counted).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use reqwest::Method;

use crate::cluster::start_extra;
use crate::helpers::{spawn_app_on, spawn_app_with, test_settings, TestApp};
use crate::kit::call;
use crate::kit::gateway::{connect, tenant_database, tenant_sessions, tenant_with_key};

/// Settings that let every client wait its turn: no rate limits, and a
/// checkout that waits as long as the slowest turn may take.
fn budgeted(settings: &mut tenant_plane::config::Settings, budget: u32) {
    settings.router.connection_budget = budget;
    settings.router.rate_limit_scale = 0.0;
    settings.router.acquire_timeout_ms = 30_000;
}

#[tokio::test]
async fn gateway_and_http_sessions_of_sixty_tenants_together_never_pass_a_budget_of_three() {
    let app = spawn_app_with(|s| budgeted(s, 3)).await;
    // Every tenant's clients at once.
    clients_never_pass_the_budget(&app, "wire-budget", 60, 3, 60).await;
}

#[tokio::test]
async fn gateway_and_http_sessions_of_a_thousand_tenants_together_never_pass_a_budget_of_fifty() {
    let server = tokio::task::spawn_blocking(start_extra).await.unwrap();
    let (mut settings, _) = test_settings();
    let catalog = "thousand_tenants_catalog";
    settings.database_url = Some(server.server.url(catalog));
    budgeted(&mut settings, 50);
    let app = spawn_app_on(settings, catalog.into(), server.server.clone()).await;
    // Twelve tenants' clients at a time: thirty-six, within the budget.
    let databases = clients_never_pass_the_budget(&app, "thousand", 1000, 50, 12).await;
    // Every backend gone, so that each has counted its session.
    app.stop().await;
    let admin = app.server.connect("postgres").await;
    let opened: i64 = admin
        .query_one(
            "SELECT sum(sessions)::bigint FROM pg_stat_database WHERE datname = ANY($1)",
            &[&databases],
        )
        .await
        .unwrap()
        .get(0);
    // A tenant's clients need two or three sessions (its wire clients may
    // share one); a fourth for some is slack. Sessions closed under tenants
    // still working would need more: counting requests alone to choose
    // whose to close made 5.6 a tenant here.
    assert!(
        (2000..=4000).contains(&opened),
        "{opened} sessions opened for 1,000 tenants' 3,000 clients"
    );
    drop(admin);
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

/// Makes `tenants` tenants, each with a key; then, `at_once` tenants at a
/// time, two wire clients (four transactions each) and one HTTP client
/// (three requests) of each; meanwhile PostgreSQL's count of the router's
/// sessions to those databases is sampled. Every transaction is answered
/// and the count never passes `budget`. The tenants' databases.
async fn clients_never_pass_the_budget(
    app: &TestApp,
    prefix: &str,
    tenants: usize,
    budget: i64,
    at_once: usize,
) -> Vec<String> {
    let tenants: Vec<(String, String, String)> = futures_util::stream::iter(0..tenants)
        .map(|i| async move {
            let (id, slug, key) =
                tenant_with_key(app, &format!("{prefix}-{i}"), "tenant_admin").await;
            (tenant_database(app, &id).await, slug, key)
        })
        .buffered(6)
        .collect()
        .await;
    let databases: Vec<String> = tenants.iter().map(|t| t.0.clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicI64::new(0));
    let sampler = {
        let admin = app.server.connect("postgres").await;
        let (stop, peak, databases) = (stop.clone(), peak.clone(), databases.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(tenant_sessions(&admin, &databases).await, Ordering::Relaxed);
            }
        })
    };
    // Each tenant's turn closes another's idle session.
    let sums: Vec<i64> = futures_util::stream::iter(&tenants)
        .map(|(_, slug, key)| async move {
            let wire = [wire_client(app, slug, key), wire_client(app, slug, key)];
            let (sums, ()) = futures_util::future::join(
                futures_util::future::join_all(wire),
                http_client(app, key),
            )
            .await;
            sums.into_iter().sum::<i64>()
        })
        .buffer_unordered(at_once)
        .collect()
        .await;
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert_eq!(sums.len(), tenants.len());
    assert!(
        sums.iter().all(|s| *s == 12),
        "every wire transaction answered"
    );
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        (1..=budget).contains(&peak),
        "{peak} sessions for a budget of {budget}"
    );
    databases
}

/// A wire client's four transactions; the sum of their answers (6).
async fn wire_client(app: &TestApp, slug: &str, key: &str) -> i64 {
    let db = connect(app, slug, key).await.expect("log in");
    let mut sum = 0i64;
    for n in 0..4i64 {
        let row = db
            .query_one("SELECT $1::bigint + count(*) FROM agents", &[&n])
            .await;
        sum += row
            .expect("a transaction within the budget")
            .get::<_, i64>(0);
    }
    sum
}

async fn http_client(app: &TestApp, key: &str) {
    for _ in 0..3 {
        let listed = call(app, Method::GET, "/v1/agents", key, None, None).await;
        assert_eq!(listed.status(), 200);
    }
}
