//! The tenant data plane: agents, calls, analytics, limits, API keys, audit,
//! suspension, rate limits and the connection budget.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app};
use crate::kit::{call, expect_error, id, ok_json};

#[tokio::test]
async fn a_tenant_admin_manages_agents_and_calls_and_every_mutation_is_audited() {
    let app = spawn_app().await;
    let t = app.create_tenant("callcenter", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let agent = ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "Ava", "type": "voice" })),
        )
        .await,
        201,
    )
    .await;
    let agent_id = agent["id"].as_str().unwrap();
    let renamed = ok_json(
        call(
            &app,
            Method::PATCH,
            &format!("/v1/agents/{agent_id}"),
            &admin,
            None,
            Some(json!({ "name": "Ava 2" })),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "Ava 2");
    let c = ok_json(
        call(&app, Method::POST, "/v1/calls", &admin, None, Some(json!({ "agent_id": agent_id, "customer_phone": "+1 555 0100", "status": "in_progress" }))).await,
        201,
    )
    .await;
    let call_id = c["id"].as_str().unwrap();
    ok_json(
        call(
            &app,
            Method::PATCH,
            &format!("/v1/calls/{call_id}"),
            &admin,
            None,
            Some(json!({ "status": "completed", "duration": 42 })),
        )
        .await,
        200,
    )
    .await;
    let listed = ok_json(
        call(
            &app,
            Method::GET,
            "/v1/calls?status=completed",
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(listed["calls"].as_array().unwrap().len(), 1);
    let summary = ok_json(
        call(
            &app,
            Method::GET,
            "/v1/analytics/summary",
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(summary["total_calls"], 1);
    assert_eq!(summary["calls_by_status"]["completed"], 1);
    assert_eq!(summary["average_duration"], 42.0);
    assert_eq!(summary["calls_per_agent"][0]["agent_id"], agent_id);
    // An agent with calls cannot go; the audit log has every mutation.
    expect_error(
        app.request(Method::DELETE, &format!("/v1/agents/{agent_id}"))
            .bearer(&admin)
            .send()
            .await,
        409,
        "in_use",
    )
    .await;
    let audit = ok_json(
        call(&app, Method::GET, "/v1/audit", &admin, None, None).await,
        200,
    )
    .await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "calls.update",
            "calls.create",
            "agents.update",
            "agents.create"
        ]
    );
    let event = &audit["events"][0];
    assert_eq!(event["user_id"], "test-user");
    assert_eq!(event["result"], "success");
    assert!(
        event["ip_address"].is_string() && event["user_agent"].is_string(),
        "{event}"
    );
}

#[tokio::test]
async fn limits_and_features_from_the_effective_configuration_are_enforced() {
    let app = spawn_app().await;
    let t = app
        .create_tenant("limited", json!({ "features": { "maxAgents": 3, "maxConcurrentCalls": 1, "voiceAgents": false } }))
        .await;
    let sub = app
        .create_subtenant(t["id"].as_str().unwrap(), "limited-office")
        .await;
    ok_json(
        app.admin(
            Method::PATCH,
            &format!("/v1/tenants/{}", sub["id"].as_str().unwrap()),
            Some(json!({ "settings": { "features": { "maxAgents": 1 } } })),
        )
        .await,
        200,
    )
    .await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let sub_admin = app.token(Role::SubtenantAdmin, Some(id(&t)), Some(id(&sub)));
    expect_error(
        app.request(Method::POST, "/v1/agents")
            .bearer(&admin)
            .json(&json!({ "name": "V", "type": "voice" }))
            .send()
            .await,
        409,
        "feature_disabled",
    )
    .await;
    let a = ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &sub_admin,
            None,
            Some(json!({ "name": "S1", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    // The subtenant's own limit (1) is reached; the tenant's (3) is not.
    expect_error(
        app.request(Method::POST, "/v1/agents")
            .bearer(&sub_admin)
            .json(&json!({ "name": "S2", "type": "chat" }))
            .send()
            .await,
        409,
        "max_agents_exceeded",
    )
    .await;
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "T1", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "T2", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    expect_error(
        app.request(Method::POST, "/v1/agents")
            .bearer(&admin)
            .json(&json!({ "name": "T3", "type": "chat" }))
            .send()
            .await,
        409,
        "max_agents_exceeded",
    )
    .await;
    // One call in progress at a time.
    let agent = a["id"].as_str().unwrap();
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/calls",
            &sub_admin,
            None,
            Some(json!({ "agent_id": agent, "status": "in_progress" })),
        )
        .await,
        201,
    )
    .await;
    let (status, code, _) = envelope(
        call(
            &app,
            Method::POST,
            "/v1/calls",
            &admin,
            None,
            Some(json!({ "agent_id": agent, "status": "in_progress" })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (409, "max_concurrent_calls_exceeded")
    );
}
