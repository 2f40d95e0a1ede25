//! The router under pressure: suspension, rate limits, the connection
//! budget and single-flight pool creation.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app, spawn_app_with};
use crate::kit::tenant_db::router_sessions;
use crate::kit::{call, id, ok_json};

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
async fn a_flooding_tenant_is_refused_before_it_takes_a_session_and_a_quiet_tenant_sees_no_error() {
    // Scale 0.05: the free flooder gets one request a second, a burst of two.
    let app = spawn_app_with(|s| s.router.rate_limit_scale = 0.05).await;
    let flooder = ok_json(
        app.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Flooder", "slug": "flooder", "tier": "free" })),
        )
        .await,
        201,
    )
    .await;
    // Enterprise at this scale: 50 a second, a burst of 100; the quiet
    // tenant's 40 requests stay well within its own quota.
    let quiet = ok_json(
        app.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Quiet", "slug": "quiet-one", "tier": "enterprise" })),
        )
        .await,
        201,
    )
    .await;
    let flooder_db = flooder["database"].as_str().unwrap().to_string();
    let flooder_admin = app.token(Role::TenantAdmin, Some(id(&flooder)), None);
    let quiet_admin = app.token(Role::TenantAdmin, Some(id(&quiet)), None);
    // Eight clients flood while the quiet tenant sends its own requests.
    let flood = (0..8).map(|_| async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let r = call(&app, Method::GET, "/v1/agents", &flooder_admin, None, None).await;
            statuses.push(r.status().as_u16());
        }
        statuses
    });
    let quiet_run = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let r = call(&app, Method::GET, "/v1/agents", &quiet_admin, None, None).await;
            statuses.push(r.status().as_u16());
        }
        statuses
    };
    let (flooded, quiet_statuses) = tokio::join!(futures_util::future::join_all(flood), quiet_run);
    assert!(
        quiet_statuses.iter().all(|s| *s == 200),
        "the quiet tenant saw {quiet_statuses:?}"
    );
    let flooded: Vec<u16> = flooded.into_iter().flatten().collect();
    let refused = flooded.iter().filter(|s| **s == 429).count();
    assert!(
        flooded.iter().all(|s| *s == 200 || *s == 429),
        "{flooded:?}"
    );
    assert!(
        refused >= 300,
        "only {refused} of 320 flood requests were refused"
    );
    // The refusals came before a connection: the flooder holds at most its
    // free-tier pool (2 sessions), whatever it sent.
    let sessions: i64 = app
        .server
        .connect("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
            &[&flooder_db],
        )
        .await
        .unwrap()
        .get(0);
    assert!(sessions <= 2, "the flooder holds {sessions} sessions");
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
    let count_router = || router_sessions(&admin, &databases);
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
    let pools = app.state().await.tenancy().router().pools_cached().await;
    assert!(pools <= 5, "{pools} pools cached");
}

#[tokio::test]
async fn a_hundred_simultaneous_first_requests_to_a_cold_tenant_open_one_pool() {
    let app = spawn_app().await;
    let t = app.create_tenant("cold-burst", json!({})).await;
    let db = t["database"].as_str().unwrap().to_string();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let router = app.state().await.tenancy().router().clone();
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

#[tokio::test]
async fn a_read_dropped_after_it_was_sent_leaves_its_session_outside_any_transaction() {
    use futures_util::FutureExt;
    use tenant_plane::data::{read, Caller};
    use tenant_plane::domain::TenantId;

    let app = spawn_app().await;
    let t = app.create_tenant("cancelled-read", json!({})).await;
    let tenant: TenantId = t["id"].as_str().unwrap().parse().unwrap();
    let state = app.state().await;
    let route = state.tenancy().router().route(tenant).await.unwrap();
    let conn = state.tenancy().router().connection(&route).await.unwrap();
    let caller = Caller {
        tenant_id: tenant,
        subtenant_id: None,
        user_id: "reader".into(),
        own_only: false,
    };
    let slow = "SELECT pg_sleep(0.3)";
    // Once through, so every statement is cached and the next read sends
    // all four on its first poll.
    read(&conn, &caller, slow, &[]).await.unwrap();
    let mut dropped = Box::pin(read(&conn, &caller, slow, &[]));
    assert!(dropped.as_mut().now_or_never().is_none(), "still running");
    drop(dropped);
    // The next statement on the same session runs after the dropped read's
    // COMMIT: no transaction is open and its scope is gone.
    let row = conn
        .query_one(
            "SELECT current_setting('transaction_read_only'), \
                    coalesce(current_setting('app.user_id', true), '')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "off");
    assert_eq!(row.get::<_, String>(1), "");
}
