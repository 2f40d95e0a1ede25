//! A server's connection budget changed while it serves: the router's open
//! sessions follow the new budget without a restart.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{spawn_app_on, test_settings, TestApp};
use crate::kit::servers::catalog_server_id;
use crate::kit::tenant_db::router_sessions;
use crate::kit::{call, id, ok_json};

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

/// What a replica says of the server's router sessions: (open, budget).
async fn seen_by(app: &TestApp, server: &str) -> (u64, u64) {
    let seen = ok_json(
        app.admin(Method::GET, &format!("/v1/servers/{server}"), None)
            .await,
        200,
    )
    .await;
    let connections = &seen["connections"];
    (
        connections["open"].as_u64().unwrap(),
        connections["budget"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_servers_budget_changed_with_patch_bounds_its_open_sessions_on_every_replica_without_a_restart(
) {
    let (mut settings, catalog_db) = test_settings();
    settings.router.connection_budget = TENANTS as u32;
    let pg = crate::cluster::shared().clone();
    let app = spawn_app_on(settings.clone(), catalog_db.clone(), pg.clone()).await;
    // A second replica, which hears of the change from the catalog.
    let replica = spawn_app_on(settings, catalog_db, pg).await;
    let mut tokens = Vec::new();
    let mut databases = Vec::new();
    for i in 0..TENANTS {
        let t = app.create_tenant(&format!("resized-{i}"), json!({})).await;
        databases.push(t["database"].as_str().unwrap().to_string());
        tokens.push(app.token(Role::TenantAdmin, Some(id(&t)), None));
    }
    let server = catalog_server_id(&app).await;
    let admin = app.server.connect("postgres").await;
    let open_sessions = || router_sessions(&admin, &databases);
    // A closed session's backend leaves pg_stat_activity a moment after its
    // client has gone, so a count may take a moment to settle; sessions over
    // the budget that stayed open would never settle.
    let settled_at_most = |limit: i64, after: &'static str| {
        let open_sessions = &open_sessions;
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let open = open_sessions().await;
                if open <= limit {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "{open} sessions open 5 s {after}, over {limit}"
                );
                tokio::task::yield_now().await;
            }
        }
    };
    for replica_or_app in [&replica, &app] {
        round(replica_or_app, &tokens, "wide").await;
    }
    let (open, budget) = seen_by(&app, &server).await;
    assert!(
        open > 4 && budget == TENANTS as u64,
        "{open} open of {budget}"
    );

    // Lowered on one replica: its idle sessions over the budget close at
    // once; the other replica follows the change notice.
    let changed = set_budget(&app, &server, 4).await;
    assert_eq!(changed["connections"]["budget"], 4, "{changed}");
    // Both replicas' own counts fall to the budget as the closed sessions'
    // tasks end (the other replica's once the notice reaches it).
    for replica_or_app in [&app, &replica] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (open, budget) = seen_by(replica_or_app, &server).await;
            if budget == 4 && open <= 4 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{open} open of {budget} 5 s after the budget fell to 4"
            );
            tokio::task::yield_now().await;
        }
    }
    settled_at_most(8, "after the budget fell to 4 on two replicas").await;
    for r in 0..3 {
        for replica_or_app in [&replica, &app] {
            round(replica_or_app, &tokens, &format!("narrow-{r}")).await;
            let (open, budget) = seen_by(replica_or_app, &server).await;
            assert!(open <= 4 && budget == 4, "{open} open of {budget}");
        }
        settled_at_most(8, "after a round on two replicas").await;
    }

    // Raised: the router opens more sessions again.
    set_budget(&app, &server, 10).await;
    let mut peak = 0;
    for r in 0..3 {
        round(&app, &tokens, &format!("wider-{r}")).await;
        let (open, budget) = seen_by(&app, &server).await;
        assert!(open <= 10 && budget == 10, "{open} open of {budget}");
        peak = peak.max(open);
    }
    assert!(
        peak > 4,
        "at most {peak} sessions open under a budget raised from 4 to 10"
    );
}
