//! A tenant database that refuses the tenant role a privilege is an
//! operator's problem: the client gets a 503 with a code of its own and
//! nothing of PostgreSQL's message.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app};
use crate::kit::{call, id, ok_json};

#[tokio::test]
async fn a_revoked_table_grant_answers_503_tenant_database_unavailable_and_tells_nothing_internal()
{
    let app = spawn_app().await;
    let t = app.create_tenant("grant-lost", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
    // By hand, in this tenant's database only: the tenant roles lose SELECT.
    app.server
        .connect(t["database"].as_str().unwrap())
        .await
        .batch_execute("REVOKE SELECT ON agents FROM ai_care_tenant_app")
        .await
        .unwrap();
    let response = call(&app, Method::GET, "/v1/agents", &admin, None, None).await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, code, message) = envelope(response).await;
    assert_eq!(
        (status, code.as_str()),
        (503, "tenant_database_unavailable")
    );
    for internal in ["permission", "agents", "42501", "ai_care", "denied"] {
        assert!(!message.contains(internal), "{message}");
    }
}
