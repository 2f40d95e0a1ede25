//! The console's session over plain HTTP: the cookie's attributes, CSRF,
//! sign-out, forged cookies, who may sign in, and Secure behind a proxy.

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;
use tenant_plane::domain::TenantId;

use crate::helpers::{envelope, spawn_app, spawn_app_with};
use crate::kit::console::{pair, sign_in, with_cookie};

#[tokio::test]
async fn the_session_cookie_is_httponly_samesite_strict_and_unsafe_requests_need_the_csrf_token() {
    let app = spawn_app().await;
    let (status, set_cookie, session) = sign_in(&app, &app.super_admin_token()).await;
    assert_eq!(status, 201, "{session}");
    let set_cookie = set_cookie.expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    // Served over plain HTTP here, so not Secure (a browser would drop it).
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert!(
        !set_cookie.contains(&app.super_admin_token()),
        "the credential is sealed"
    );
    let cookie = pair(&set_cookie);
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(session["role"], "super_admin");

    // Reads need only the cookie.
    let summary = with_cookie(&app, Method::GET, "/v1/fleet/summary", &cookie, None, None).await;
    assert_eq!(summary.status(), 200);
    // Writes without the token, or with another, are refused and change nothing.
    let body = json!({ "slug": "csrf-victim", "name": "Victim" });
    for token in [None, Some("0".repeat(64))] {
        let refused = with_cookie(
            &app,
            Method::POST,
            "/v1/tenants",
            &cookie,
            token.as_deref(),
            Some(body.clone()),
        )
        .await;
        assert_eq!(envelope(refused).await.1, "csrf_failed");
    }
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM tenants WHERE slug = 'csrf-victim'")
            .await,
        0
    );
    let made = with_cookie(
        &app,
        Method::POST,
        "/v1/tenants",
        &cookie,
        Some(&csrf),
        Some(body),
    )
    .await;
    assert_eq!(made.status(), 201);

    // Sign-out needs the token too, then clears the cookie.
    let refused = with_cookie(
        &app,
        Method::DELETE,
        "/console/session",
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(envelope(refused).await.1, "csrf_failed");
    let out = with_cookie(
        &app,
        Method::DELETE,
        "/console/session",
        &cookie,
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(out.status(), 204);
    let cleared = out.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cleared.starts_with("tp_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let audited = app
        .catalog_count("SELECT count(*) FROM audit_log WHERE action IN ('console.sign_in', 'console.sign_out') AND result = 'success'")
        .await;
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn a_forged_or_altered_session_cookie_is_refused_and_only_operators_may_sign_in() {
    let app = spawn_app().await;
    let (_, set_cookie, _) = sign_in(&app, &app.super_admin_token()).await;
    let cookie = pair(&set_cookie.unwrap());
    let mut altered = cookie.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    for forged in [
        altered,
        "tp_session=00".to_string(),
        format!("tp_session={}", "ab".repeat(200)),
    ] {
        let response =
            with_cookie(&app, Method::GET, "/v1/fleet/summary", &forged, None, None).await;
        assert_eq!(
            envelope(response).await,
            (401, "invalid_token".into(), "the token is not valid".into())
        );
    }

    // A viewer, an agent or a subtenant_admin is not an operator.
    let (tenant, _) = app.create_tenant_named("console-roles").await;
    let tenant: TenantId = tenant.parse().unwrap();
    for role in [Role::Viewer, Role::Agent] {
        let (status, cookie, body) = sign_in(&app, &app.token(role, Some(tenant), None)).await;
        assert_eq!((status, cookie.is_none()), (403, true), "{role:?}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let (status, _, body) = sign_in(&app, "not-a-token").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, _, body) = sign_in(&app, "").await;
    assert_eq!(status, 422, "{body}");
    // A tenant_admin may sign in.
    let (status, _, body) = sign_in(&app, &app.token(Role::TenantAdmin, Some(tenant), None)).await;
    assert_eq!(
        (status, body["tenant_id"].as_str()),
        (201, Some(tenant.to_string().as_str()))
    );
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_a_trusted_tls_proxy_and_only_then() {
    let app =
        spawn_app_with(|s| s.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let token = app.super_admin_token();
    let signed_in = |proto: Option<&'static str>| {
        let (app, token) = (&app, &token);
        async move {
            let mut req = app
                .client
                .post(app.url("/console/session"))
                .json(&json!({ "credential": token }));
            if let Some(proto) = proto {
                req = req.header("x-forwarded-proto", proto);
            }
            let response = req.send().await.unwrap();
            assert_eq!(response.status(), 201);
            response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert!(signed_in(Some("https")).await.contains("; Secure"));
    assert!(!signed_in(Some("http")).await.contains("Secure"));
    assert!(!signed_in(None).await.contains("Secure"));
    // A client that is not a trusted proxy cannot ask for it.
    let direct = spawn_app().await;
    let response = direct
        .client
        .post(direct.url("/console/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({ "credential": direct.super_admin_token() }))
        .send()
        .await
        .unwrap();
    assert!(!response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
}

#[tokio::test]
async fn signing_out_clears_a_session_whose_key_was_revoked_and_narrowed_keys_cannot_sign_in() {
    let app = spawn_app().await;
    let (tenant, _) = app.create_tenant_named("console-keys").await;
    let mint = |body: Value| {
        let (app, tenant) = (&app, &tenant);
        async move {
            let made: Value = app
                .admin(
                    Method::POST,
                    &format!("/v1/tenants/{tenant}/api-keys"),
                    Some(body),
                )
                .await
                .json()
                .await
                .unwrap();
            made
        }
    };
    let key = mint(json!({ "name": "ops", "role": "tenant_admin" })).await;
    let (status, set_cookie, session) = sign_in(&app, key["key"].as_str().unwrap()).await;
    assert_eq!(status, 201, "{session}");
    let cookie = pair(&set_cookie.unwrap());
    let csrf = session["csrf_token"].as_str().unwrap();
    let revoked = app
        .admin(
            Method::DELETE,
            &format!(
                "/v1/tenants/{tenant}/api-keys/{}",
                key["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    // The revoked key's session no longer reads anything, and signs out.
    let read = with_cookie(
        &app,
        Method::GET,
        &format!("/v1/tenants/{tenant}"),
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(read.status(), 401);
    let out = with_cookie(
        &app,
        Method::DELETE,
        "/console/session",
        &cookie,
        Some(csrf),
        None,
    )
    .await;
    assert_eq!(out.status(), 204);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    // A tenant_admin key narrowed to calls can neither sign in nor read the tenant.
    let narrowed = mint(json!({ "name": "calls", "role": "tenant_admin",
        "permissions": [{ "resource": "calls", "actions": ["read"], "scope": "tenant" }] }))
    .await;
    let narrowed = narrowed["key"].as_str().unwrap();
    let (status, cookie, body) = sign_in(&app, narrowed).await;
    assert_eq!((status, cookie.is_none()), (403, true), "{body}");
    let (status, code, _) = envelope(
        app.get(&format!("/v1/tenants/{tenant}"), Some(narrowed))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
}
