//! The gateway's sessions count against the same per-server budget as the
//! HTTP plane's: PostgreSQL's own count of the two together never passes
//! it, while clients of more tenants than permits take turns. Sixty
//! tenants behind a budget of three: the ratio of a thousand tenants to a
//! budget of fifty (that run itself is `scripts/bench-gateway.sh`, whose
//! thousand databases take some 12 GB).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use reqwest::Method;

use crate::helpers::spawn_app_with;
use crate::kit::call;
use crate::kit::gateway::{connect, tenant_database, tenant_sessions, tenant_with_key};

const BUDGET: u32 = 3;
const TENANTS: usize = 60;

#[tokio::test]
async fn gateway_and_http_sessions_of_sixty_tenants_together_never_pass_a_budget_of_three() {
    let app = spawn_app_with(|s| {
        s.router.connection_budget = BUDGET;
        s.router.rate_limit_scale = 0.0;
        s.router.acquire_timeout_ms = 20_000;
    })
    .await;
    let tenants: Vec<(String, String, String)> = futures_util::stream::iter(0..TENANTS)
        .map(|i| {
            let app = &app;
            async move {
                let (id, slug, key) =
                    tenant_with_key(app, &format!("wire-budget-{i}"), "tenant_admin").await;
                (tenant_database(app, &id).await, slug, key)
            }
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
    // Two wire clients and one HTTP client per tenant, all at once, each
    // tenant's turn closing another's idle session.
    let wire = tenants
        .iter()
        .flat_map(|(_, slug, key)| [0, 1].map(|_| (slug, key)))
        .map(|(slug, key)| {
            let app = &app;
            async move {
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
        });
    let http = tenants.iter().map(|(_, _, key)| {
        let app = &app;
        async move {
            for _ in 0..3 {
                let listed = call(app, Method::GET, "/v1/agents", key, None, None).await;
                assert_eq!(listed.status(), 200);
            }
        }
    });
    let (sums, _) = futures_util::future::join(
        futures_util::future::join_all(wire),
        futures_util::future::join_all(http),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert!(
        sums.iter().all(|s| *s == 6),
        "every wire transaction answered"
    );
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        (1..=BUDGET as i64).contains(&peak),
        "{peak} sessions for a budget of {BUDGET}"
    );
}
