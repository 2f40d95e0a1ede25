//! Database servers through the API: registering one, its state, where a
//! tenant lives, and an agent to prove a tenant answers.

use reqwest::Method;
use serde_json::{json, Value};

use crate::cluster::ExtraCluster;
use crate::helpers::TestApp;
use crate::kit::{call, ok_json};

/// Registers `extra` through the API and returns the server's JSON.
pub async fn register(app: &TestApp, name: &str, extra: &ExtraCluster, pinned: Value) -> Value {
    ok_json(
        app.admin(
            Method::POST,
            "/v1/servers",
            Some(json!({ "name": name, "dsn": extra.admin_dsn(), "pinned_tiers": pinned })),
        )
        .await,
        201,
    )
    .await
}

/// Moves `tenant` to the server `target` through the API and follows the
/// operation to its end; the finished operation.
pub async fn move_tenant(app: &TestApp, tenant: &str, target: &str) -> serde_json::Value {
    app.follow(
        app.admin(
            reqwest::Method::POST,
            &format!("/v1/tenants/{tenant}/move"),
            Some(serde_json::json!({ "server": target })),
        )
        .await,
    )
    .await
}

pub async fn server_of(app: &TestApp, tenant: &str) -> String {
    app.catalog_db()
        .await
        .query_one(
            "SELECT db_server_id::text FROM tenants WHERE id = $1::text::uuid",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0)
}

/// Marks a server `active`, `draining` or `down` through the API.
pub async fn set_server_state(app: &TestApp, server: &str, state: &str) {
    ok_json(
        app.admin(
            Method::PATCH,
            &format!("/v1/servers/{server}"),
            Some(json!({ "state": state })),
        )
        .await,
        200,
    )
    .await;
}

pub async fn catalog_server_id(app: &TestApp) -> String {
    app.catalog_db()
        .await
        .query_one("SELECT id::text FROM db_servers WHERE is_catalog", &[])
        .await
        .unwrap()
        .get(0)
}

/// The catalog's own server, as the provisioner takes it.
pub async fn catalog_server(app: &TestApp) -> tenant_plane::catalog::DbServer {
    let id = catalog_server_id(app).await.parse().unwrap();
    let state = app.state().await;
    state
        .services()
        .catalog
        .get_server(id)
        .await
        .unwrap()
        .unwrap()
}

/// Creates an agent for `tenant` and returns its id.
pub async fn agent_for(app: &TestApp, token: &str, name: &str) -> String {
    let agent = ok_json(
        call(
            app,
            Method::POST,
            "/v1/agents",
            token,
            None,
            Some(json!({ "name": name, "type": "voice" })),
        )
        .await,
        201,
    )
    .await;
    agent["id"].as_str().unwrap().to_string()
}

/// A skewed pair: the catalog's server full by tenants (`slugs`, all made
/// on it, against a capacity of as many), and a fresh server beside it,
/// both sampled. Returns the tenants, and the fresh server with its cluster
/// (keep it alive for the test).
pub async fn skewed_pair(app: &TestApp, slugs: &[&str]) -> (Vec<Value>, String, ExtraCluster) {
    let mut tenants = Vec::new();
    for slug in slugs {
        tenants.push(app.create_tenant(slug, json!({})).await);
    }
    let extra = crate::cluster::start_extra();
    let roomy = register(app, "pg-roomy", &extra, json!([])).await;
    let roomy_id = roomy["id"].as_str().unwrap().to_string();
    let crowded = catalog_server_id(app).await;
    let path = format!("/v1/servers/{crowded}");
    let body = json!({ "capacity": slugs.len() });
    ok_json(app.admin(Method::PATCH, &path, Some(body)).await, 200).await;
    app.state().await.services().usage.sample().await.unwrap();
    (tenants, roomy_id, extra)
}
