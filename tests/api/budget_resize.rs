//! A server's connection budget changed while it serves: the router's open
//! sessions follow the new budget without a restart.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::data_plane::{call, id, ok_json};
use crate::helpers::{spawn_app_with, TestApp};
use crate::servers::catalog_server_id;

const TENANTS: usize = 12;

/// One request from every tenant at once; each must succeed.
async fn round(app: &TestApp, tokens: &[String], tag: &str) {
    let requests = tokens.iter().map(|token| {
        call(
            app,
            Method::POST,
            "/v1/agents",
            token,
            None,
            Some(json!({ "name": tag, "type": "chat" })),
        )
    });
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
}

async fn set_budget(app: &TestApp, server: &str, budget: u32) -> serde_json::Value {
    ok_json(
        app.admin(
            Method::PATCH,
            &format!("/v1/servers/{server}"),
            Some(json!({ "connection_budget": budget })),
        )
        .await,
        200,
    )
    .await
}

#[tokio::test]
async fn a_servers_budget_changed_with_patch_bounds_its_open_sessions_at_once_without_a_restart() {
    let app = spawn_app_with(|s| s.router.connection_budget = TENANTS as u32).await;
    let mut tokens = Vec::new();
    let mut databases = Vec::new();
    for i in 0..TENANTS {
        let t = app.create_tenant(&format!("resized-{i}"), json!({})).await;
        databases.push(t["database"].as_str().unwrap().to_string());
        tokens.push(app.token(Role::TenantAdmin, Some(id(&t)), None));
    }
    let server = catalog_server_id(&app).await;
    let admin = app.server.connect("postgres").await;
    let open_sessions = || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tenant-plane-router' AND datname = ANY($1)",
                &[&databases],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    round(&app, &tokens, "wide").await;
    let before = open_sessions().await;
    assert!(
        before > 4,
        "only {before} sessions open under the first budget"
    );

    // Lowered: idle sessions above the new budget close at once.
    let changed = set_budget(&app, &server, 4).await;
    assert_eq!(changed["connections"]["budget"], 4, "{changed}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_sessions().await > 4 {
        assert!(
            Instant::now() < deadline,
            "{} sessions still open 5 s after the budget fell to 4",
            open_sessions().await
        );
        tokio::task::yield_now().await;
    }
    let mut peak = 0;
    for r in 0..3 {
        round(&app, &tokens, &format!("narrow-{r}")).await;
        peak = peak.max(open_sessions().await);
    }
    assert!(peak <= 4, "{peak} sessions open under a budget of 4");
    let shown = ok_json(
        app.admin(Method::GET, &format!("/v1/servers/{server}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(shown["connections"]["budget"], 4, "{shown}");
    assert!(
        shown["connections"]["open"].as_u64().unwrap() <= 4,
        "{shown}"
    );

    // Raised: the router opens more sessions again.
    set_budget(&app, &server, 10).await;
    let mut peak = 0;
    for r in 0..3 {
        round(&app, &tokens, &format!("wider-{r}")).await;
        peak = peak.max(open_sessions().await);
    }
    assert!(
        (5..=10).contains(&peak),
        "{peak} sessions open at most under a budget raised from 4 to 10"
    );
}
