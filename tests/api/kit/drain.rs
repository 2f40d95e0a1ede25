//! Drains on a rig of replicas: starting one, waiting for it, and what the
//! servers and tenants look like after.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::domain::{DbName, TenantId};

use crate::cluster::TestServer;
use crate::rig::{Replica, Rig};

/// Polls the operation at `location` on `replica` until it finished.
pub async fn finished(rig: &Rig, replica: &Replica, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let op = rig.ok(replica, Method::GET, location, None, 200).await;
        if !matches!(op["state"].as_str(), Some("queued" | "running")) {
            return op;
        }
        assert!(Instant::now() < deadline, "never finished: {op}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a long action on `replica`; returns its operation's path.
pub async fn begin(
    rig: &Rig,
    replica: &Replica,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> String {
    let response = rig.admin(replica, method, path, body).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    assert_eq!(status, 202, "{path}: {text}");
    location.unwrap()
}

pub async fn set_state(rig: &Rig, replica: &Replica, server: &str, state: &str) {
    rig.ok(
        replica,
        Method::PATCH,
        &format!("/v1/servers/{server}"),
        Some(json!({ "state": state })),
        200,
    )
    .await;
}

/// How many tenants `GET /v1/servers` shows on `server`.
pub async fn tenants_on(rig: &Rig, replica: &Replica, server: &str) -> i64 {
    let servers = rig.ok(replica, Method::GET, "/v1/servers", None, 200).await;
    servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == server)
        .unwrap()["tenants"]
        .as_i64()
        .unwrap()
}

pub async fn tenant(rig: &Rig, replica: &Replica, id: &str) -> Value {
    rig.ok(
        replica,
        Method::GET,
        &format!("/v1/tenants/{id}"),
        None,
        200,
    )
    .await
}

/// Whether `server` holds a database of `tenant` (live or a move's copy).
pub async fn has_database(server: &TestServer, tenant: TenantId) -> bool {
    let name = DbName::for_tenant(tenant);
    server
        .connect("postgres")
        .await
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname LIKE $1 || '%'",
            &[&name.as_str()],
        )
        .await
        .unwrap()
        .is_some()
}

/// The tenant takes writes (its move did not leave them paused) and still
/// has the agents it had.
pub async fn takes_writes(rig: &Rig, replica: &Replica, id: TenantId, agents: usize) {
    let token = crate::helpers::sign(tenant_plane::auth::Claims::new(
        "drain-race",
        tenant_plane::auth::Role::TenantAdmin,
        Some(id),
        None,
        Duration::from_secs(3600),
    ));
    let url = format!("{}/v1/agents", replica.base);
    let listed: Value = rig
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["agents"].as_array().map(Vec::len),
        Some(agents),
        "{listed}"
    );
    let made = rig
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({ "name": "after", "type": "chat" }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
}
