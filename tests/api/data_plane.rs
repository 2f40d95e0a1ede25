//! The tenant data plane: agents, calls, analytics, limits, API keys, audit,
//! suspension, rate limits and the connection budget.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::domain::TenantId;

use crate::helpers::{envelope, spawn_app, spawn_app_with, TestApp};

/// A request to the data plane with `token`, naming `tenant` if given.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    tenant: Option<&str>,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(t) = tenant {
        req = req.header("X-Tenant-Id", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub async fn ok_json(response: reqwest::Response, want: u16) -> serde_json::Value {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, want, "{text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

fn id(s: &serde_json::Value) -> TenantId {
    s["id"].as_str().unwrap().parse().unwrap()
}

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
    let (status, code, _) = envelope(
        call(
            &app,
            Method::DELETE,
            &format!("/v1/agents/{agent_id}"),
            &admin,
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "in_use"));
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
    let (status, code, _) = envelope(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "V", "type": "voice" })),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "feature_disabled"));
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
    let (status, code, _) = envelope(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &sub_admin,
            None,
            Some(json!({ "name": "S2", "type": "chat" })),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "max_agents_exceeded"));
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
    let (status, code, _) = envelope(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "T3", "type": "chat" })),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "max_agents_exceeded"));
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

#[tokio::test]
async fn an_api_key_works_until_it_is_revoked_and_is_never_shown_again() {
    let app = spawn_app().await;
    let t = app.create_tenant("keyed", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let created = ok_json(
        call(
            &app,
            Method::POST,
            &format!("/v1/tenants/{tid}/api-keys"),
            &admin,
            None,
            Some(json!({ "name": "crm sync", "role": "agent" })),
        )
        .await,
        201,
    )
    .await;
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("tpk_"));
    let listed = ok_json(
        call(
            &app,
            Method::GET,
            &format!("/v1/tenants/{tid}/api-keys"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(
        !listed.to_string().contains(&key[20..]),
        "the secret is never listed"
    );
    // The key acts as an agent of the tenant.
    ok_json(
        call(&app, Method::GET, "/v1/agents", &key, None, None).await,
        200,
    )
    .await;
    let (status, code, _) = envelope(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &key,
            None,
            Some(json!({ "name": "x", "type": "chat" })),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    // Another tenant's admin cannot mint keys here; a super_admin role is refused.
    let other = app.create_tenant("other-keyed", json!({})).await;
    let other_admin = app.token(Role::TenantAdmin, Some(id(&other)), None);
    let (status, _, _) = envelope(
        call(
            &app,
            Method::POST,
            &format!("/v1/tenants/{tid}/api-keys"),
            &other_admin,
            None,
            Some(json!({ "name": "x", "role": "agent" })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = envelope(
        call(
            &app,
            Method::POST,
            &format!("/v1/tenants/{tid}/api-keys"),
            &admin,
            None,
            Some(json!({ "name": "x", "role": "super_admin" })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    // Revocation takes effect on the next request.
    let key_id = created["id"].as_str().unwrap();
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/v1/tenants/{tid}/api-keys/{key_id}"),
        &admin,
        None,
        None,
    )
    .await;
    assert_eq!(revoked.status(), 204);
    let (status, code, _) =
        envelope(call(&app, Method::GET, "/v1/agents", &key, None, None).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    let (status, _, _) = envelope(
        call(
            &app,
            Method::GET,
            "/v1/agents",
            "tpk_0000000000000000_nope",
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_token_naming_another_tenant_gets_403_and_the_attempt_is_audited() {
    let app = spawn_app().await;
    let a = app.create_tenant("tenant-a", json!({})).await;
    let b = app.create_tenant("tenant-b", json!({})).await;
    let a_admin = app.token(Role::TenantAdmin, Some(id(&a)), None);
    let (status, code, _) = envelope(
        call(
            &app,
            Method::GET,
            "/v1/agents",
            &a_admin,
            b["id"].as_str(),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "cross_tenant"));
    let denied = app
        .catalog_count(&format!(
            "SELECT count(*) FROM audit_log WHERE tenant_id = '{}' AND result = 'failure' AND action = 'cross_tenant'",
            b["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(denied, 1);
    // A super_admin must name the tenant.
    let (status, code, _) = envelope(
        call(
            &app,
            Method::GET,
            "/v1/agents",
            &app.super_admin_token(),
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "tenant_required"));
    ok_json(
        call(
            &app,
            Method::GET,
            "/v1/agents",
            &app.super_admin_token(),
            b["id"].as_str(),
            None,
        )
        .await,
        200,
    )
    .await;
}

#[tokio::test]
async fn a_custom_domain_routes_requests_to_its_tenant() {
    let app = spawn_app().await;
    let t = app.create_tenant("domained", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    ok_json(
        app.admin(
            Method::POST,
            &format!("/v1/tenants/{tid}/domains"),
            Some(json!({ "domain": "Support.Domained.Example" })),
        )
        .await,
        201,
    )
    .await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "D", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    let by_host = app
        .client
        .get(app.url("/v1/agents"))
        .bearer_auth(app.super_admin_token())
        .header("Host", "support.domained.example")
        .send()
        .await
        .unwrap();
    let body = ok_json(by_host, 200).await;
    assert_eq!(body["agents"].as_array().unwrap().len(), 1);
    // Another tenant's user on this domain is refused.
    let other = app.create_tenant("not-domained", json!({})).await;
    let other_admin = app.token(Role::TenantAdmin, Some(id(&other)), None);
    let refused = app
        .client
        .get(app.url("/v1/agents"))
        .bearer_auth(other_admin)
        .header("Host", "support.domained.example")
        .send()
        .await
        .unwrap();
    let (status, code, _) = envelope(refused).await;
    assert_eq!((status, code.as_str()), (403, "cross_tenant"));
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_at_once_and_served_again_after_resume() {
    let app = spawn_app().await;
    let t = app.create_tenant("pausing", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let (status, code, _) =
        envelope(call(&app, Method::GET, "/v1/agents", &admin, None, None).await).await;
    assert_eq!((status, code.as_str()), (403, "tenant_suspended"));
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/resume"), None)
            .await,
        200,
    )
    .await;
    ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
    ok_json(
        app.admin(Method::DELETE, &format!("/v1/tenants/{tid}"), None)
            .await,
        200,
    )
    .await;
    let (status, code, _) =
        envelope(call(&app, Method::GET, "/v1/agents", &admin, None, None).await).await;
    assert_eq!((status, code.as_str()), (404, "tenant_deleted"));
}

#[tokio::test]
async fn a_tenant_over_its_rate_gets_429_with_retry_after_while_others_are_served() {
    // Scale 0.05: a free tenant gets one request a second, a burst of two.
    let app = spawn_app_with(|s| s.router.rate_limit_scale = 0.05).await;
    let noisy = ok_json(
        app.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Noisy", "slug": "noisy", "tier": "free" })),
        )
        .await,
        201,
    )
    .await;
    let quiet = app.create_tenant("quiet", json!({})).await;
    let noisy_admin = app.token(Role::TenantAdmin, Some(id(&noisy)), None);
    let quiet_admin = app.token(Role::TenantAdmin, Some(id(&quiet)), None);
    let mut limited = None;
    for _ in 0..5 {
        let r = call(&app, Method::GET, "/v1/agents", &noisy_admin, None, None).await;
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("the noisy tenant was limited");
    assert!(limited.headers().get("retry-after").is_some());
    let (_, code, _) = envelope(limited).await;
    assert_eq!(code, "rate_limited");
    ok_json(
        call(&app, Method::GET, "/v1/agents", &quiet_admin, None, None).await,
        200,
    )
    .await;
}

#[tokio::test]
async fn fifty_tenants_share_five_pools_and_ten_connections_without_an_error() {
    let app = spawn_app_with(|s| {
        s.router.max_pools = 5;
        s.router.connection_budget = 10;
    })
    .await;
    let mut tokens = Vec::new();
    let mut databases = Vec::new();
    for i in 0..50 {
        let t = app.create_tenant(&format!("budget-{i}"), json!({})).await;
        databases.push(t["database"].as_str().unwrap().to_string());
        tokens.push(app.token(Role::TenantAdmin, Some(id(&t)), None));
    }
    let admin = app.server.connect("postgres").await;
    let count_router = || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tenant-plane-router' AND datname = ANY($1)",
                &[&databases],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let mut peak = 0;
    for round in 0..3 {
        let requests = tokens.iter().map(|token| {
            call(
                &app,
                Method::POST,
                "/v1/agents",
                token,
                None,
                Some(json!({ "name": format!("r{round}"), "type": "chat" })),
            )
        });
        for response in futures_util::future::join_all(requests).await {
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        }
        peak = peak.max(count_router().await);
    }
    assert!(peak <= 10, "{peak} router connections open");
    let pools = app.state().await.router().pools_cached().await;
    assert!(pools <= 5, "{pools} pools cached");
}

#[tokio::test]
async fn control_plane_changes_and_denied_requests_are_audited_in_the_catalog() {
    let app = spawn_app().await;
    let t = app.create_tenant("audited", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/resume"), None)
            .await,
        200,
    )
    .await;
    // A viewer reaching for the control plane, and a caller with no token.
    let viewer = app.token(Role::Viewer, Some(id(&t)), None);
    let (status, _, _) = envelope(app.get("/v1/servers", Some(&viewer)).await).await;
    assert_eq!(status, 403);
    let (status, _, _) = envelope(app.get("/v1/tenants", None).await).await;
    assert_eq!(status, 401);
    // A viewer trying to write data.
    let (status, _, _) = envelope(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &viewer,
            None,
            Some(json!({ "name": "x", "type": "chat" })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    let rows: Vec<(String, String)> = app
        .catalog_db()
        .await
        .query("SELECT action, result FROM audit_log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let has = |action: &str, result: &str| rows.iter().any(|(a, r)| a == action && r == result);
    assert!(has("tenants.create", "success"), "{rows:?}");
    assert!(has("tenants.suspend", "success"), "{rows:?}");
    assert!(has("tenants.resume", "success"), "{rows:?}");
    assert!(has("forbidden", "failure"), "{rows:?}");
    assert!(has("unauthenticated", "failure"), "{rows:?}");
    assert!(has("agents.write", "failure"), "{rows:?}");
    // Each denial is recorded once.
    assert_eq!(rows.iter().filter(|(a, _)| a == "agents.write").count(), 1);
    assert_eq!(
        rows.iter().filter(|(_, r)| r == "failure").count(),
        3,
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_hundred_simultaneous_first_requests_to_a_cold_tenant_open_one_pool() {
    let app = spawn_app().await;
    let t = app.create_tenant("cold-burst", json!({})).await;
    let db = t["database"].as_str().unwrap().to_string();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let router = app.state().await.router().clone();
    assert_eq!(router.pools_cached().await, 0);
    let burst = (0..100).map(|_| call(&app, Method::GET, "/v1/agents", &admin, None, None));
    for response in futures_util::future::join_all(burst).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(router.pools_cached().await, 1, "one pool for one tenant");
    let open: i64 = app
        .server
        .connect("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tenant-plane-router'",
            &[&db],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        open <= tenant_plane::router::pool_size(tenant_plane::domain::Tier::Standard) as i64,
        "{open}"
    );
}
