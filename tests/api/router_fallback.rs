//! The router's last known routes serve tenants through a catalog outage,
//! but never a route that an invalidation or a later catalog read has
//! shown to be stale: a suspended subtenant is not served.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app_with, TestApp};
use crate::kit::{call, id, ok_json};

/// Makes this app's catalog database refuse every session (its pooled
/// ones ended): the catalog is down for the router. Undone by `reachable`.
async fn unreachable(app: &TestApp) {
    let admin = app.server.connect("postgres").await;
    let db = &app.catalog_db;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = '{db}' AND pid <> pg_backend_pid();"
        ))
        .await
        .unwrap();
}

async fn reachable(app: &TestApp) {
    let admin = app.server.connect("postgres").await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
            app.catalog_db
        ))
        .await
        .unwrap();
}

/// A root tenant and a subtenant, and a token of the subtenant's whose
/// route is now cached (live and last known).
async fn served_subtenant(app: &TestApp, slug: &str) -> (String, String, String) {
    let root = app.create_tenant(slug, json!({})).await;
    let sub = app
        .create_subtenant(root["id"].as_str().unwrap(), &format!("{slug}-sub"))
        .await;
    let token = app.token(Role::SubtenantAdmin, Some(id(&root)), Some(id(&sub)));
    ok_json(
        call(app, Method::GET, "/v1/agents", &token, None, None).await,
        200,
    )
    .await;
    (
        root["id"].as_str().unwrap().to_string(),
        sub["id"].as_str().unwrap().to_string(),
        token,
    )
}

/// The subtenant's read during the outage: anything but a 200.
async fn read_during_outage(app: &TestApp, token: &str) -> (u16, String) {
    unreachable(app).await;
    let (status, code, _) =
        envelope(call(app, Method::GET, "/v1/agents", token, None, None).await).await;
    reachable(app).await;
    (status, code)
}

#[tokio::test]
async fn after_every_route_is_forgotten_a_subtenant_suspended_meanwhile_is_not_served_from_its_last_known_route(
) {
    let app = spawn_app_with(|_| {}).await;
    let (_, sub, token) = served_subtenant(&app, "missed-notice").await;
    // Another replica suspends the subtenant while this one's listener is
    // away: no notice arrives here (triggers are off for this session).
    app.catalog_db()
        .await
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             UPDATE tenants SET status = 'suspended' WHERE id = '{sub}';"
        ))
        .await
        .unwrap();
    // The listener is back and forgets every route, as notices were missed.
    app.state().await.tenancy().router().invalidate_all();
    let (status, code) = read_during_outage(&app, &token).await;
    assert_eq!((status, code.as_str()), (503, "catalog_unavailable"));
}

#[tokio::test]
async fn a_suspended_roots_subtenant_whose_live_route_expired_is_not_served_from_its_last_known_route(
) {
    let app = spawn_app_with(|s| s.router.route_ttl_secs = 1).await;
    let (root, _, token) = served_subtenant(&app, "expired-child").await;
    // The subtenant's live route expires; its last known one stays.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{root}/suspend"), None)
            .await,
        200,
    )
    .await;
    let (status, code) = read_during_outage(&app, &token).await;
    assert_eq!((status, code.as_str()), (503, "catalog_unavailable"));
}

#[tokio::test]
async fn a_subtenant_seen_suspended_in_the_catalog_is_not_served_from_its_older_last_known_route() {
    let app = spawn_app_with(|s| s.router.route_ttl_secs = 1).await;
    let (_, sub, token) = served_subtenant(&app, "seen-suspended").await;
    app.catalog_db()
        .await
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             UPDATE tenants SET status = 'suspended' WHERE id = '{sub}';"
        ))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // A fresh read of the catalog says suspended.
    let (status, code, _) =
        envelope(call(&app, Method::GET, "/v1/agents", &token, None, None).await).await;
    assert_eq!((status, code.as_str()), (403, "tenant_suspended"));
    let (status, code) = read_during_outage(&app, &token).await;
    assert_eq!((status, code.as_str()), (503, "catalog_unavailable"));
}
