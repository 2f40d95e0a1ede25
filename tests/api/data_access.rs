//! Who reaches a tenant's data: API keys, other tenants' credentials,
//! custom domains, and the audit of control-plane changes and denials.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app};
use crate::kit::{call, id, ok_json};

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
    // Counted under the caller's tenant, the route and the reason.
    let denials = app.denials().await;
    assert_eq!(
        denials,
        vec![(
            "/v1/agents".to_string(),
            "cross_tenant".to_string(),
            a["id"].as_str().unwrap().to_string(),
            1
        )],
    );
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
    // Denials are counted, not written one row each.
    assert!(rows.iter().all(|(_, r)| r == "success"), "{rows:?}");
    let tenant = tid.to_string();
    let mut denials = app.denials().await;
    denials.sort();
    assert_eq!(
        denials,
        vec![
            ("/v1/agents".into(), "forbidden".into(), tenant.clone(), 1),
            ("/v1/servers".into(), "forbidden".into(), tenant, 1),
            (
                "/v1/tenants".into(),
                "unauthenticated".into(),
                String::new(),
                1
            ),
        ]
    );
}
