//! The console's session and pages over plain HTTP: the cookie's
//! attributes, CSRF, sign-out, forged cookies, who may sign in, the
//! embedded assets, the fleet summary and the tenant search.

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;
use tenant_plane::domain::TenantId;

use crate::helpers::{envelope, spawn_app, spawn_app_with, TestApp};

/// Signs in with `credential`; returns (status, Set-Cookie, body).
async fn sign_in(app: &TestApp, credential: &str) -> (u16, Option<String>, Value) {
    let response = app
        .client
        .post(app.url("/console/session"))
        .json(&json!({ "credential": credential }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    (status, cookie, response.json().await.unwrap_or(Value::Null))
}

/// `name=value` of a Set-Cookie header.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("cookie", cookie);
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

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
async fn a_tenant_admin_reads_its_own_tenant_and_subtenants_but_no_other_tenant() {
    let app = spawn_app().await;
    let (own, _) = app.create_tenant_named("reader-own").await;
    let (other, _) = app.create_tenant_named("reader-other").await;
    let office = app.create_subtenant(&own, "reader-office").await;
    let foreign = app.create_subtenant(&other, "reader-foreign").await;
    let token = app.token(Role::TenantAdmin, Some(own.parse().unwrap()), None);
    let ok = |path: String| {
        let (app, token) = (&app, &token);
        async move { app.get(&path, Some(token)).await }
    };
    assert_eq!(ok(format!("/v1/tenants/{own}")).await.status(), 200);
    assert_eq!(
        ok(format!("/v1/tenants/{}", office["id"].as_str().unwrap()))
            .await
            .status(),
        200
    );
    let subs: Value = ok(format!("/v1/tenants?parent_id={own}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subs["tenants"].as_array().unwrap().len(), 1, "{subs}");
    assert_eq!(ok(format!("/v1/tenants/{own}/domains")).await.status(), 200);
    for path in [
        format!("/v1/tenants/{other}"),
        format!("/v1/tenants/{}", foreign["id"].as_str().unwrap()),
        format!("/v1/tenants/{}", uuid::Uuid::now_v7()),
        format!("/v1/tenants?parent_id={other}"),
        format!("/v1/tenants/{other}/domains"),
        format!("/v1/tenants/{other}/migrations"),
        "/v1/tenants".into(),
        "/v1/tenants?q=reader".into(),
        "/v1/fleet/summary".into(),
        "/v1/fleet/audit".into(),
    ] {
        let (status, code, _) = envelope(app.get(&path, Some(&token)).await).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{path}");
    }
    // A tenant_admin held to a subtenant reads no tenant record.
    let held = app.token(
        Role::TenantAdmin,
        Some(own.parse().unwrap()),
        Some(office["id"].as_str().unwrap().parse().unwrap()),
    );
    assert_eq!(
        app.get(&format!("/v1/tenants/{own}"), Some(&held))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_its_security_headers() {
    let app = spawn_app().await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirect.get(app.url("/console")).send().await.unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "/console/");
    let page = app.client.get(app.url("/console/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    // Every script and style the page names is served, and nothing is fetched from elsewhere.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/console/") && s.len() > "/console/".len())
        .collect();
    assert!(assets.len() >= 6, "{assets:?}");
    for asset in assets {
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let etag = response.headers()["etag"].clone();
        let again = app
            .client
            .get(app.url(asset))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{asset}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("https://") && !body.contains("http://"),
            "{asset} loads nothing from elsewhere"
        );
    }
    let (status, code, _) = envelope(
        app.client
            .get(app.url("/console/missing.js"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, _, _) = envelope(
        app.client
            .get(app.url("/console/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_fleet_summary_counts_by_state_and_tier_and_the_tenant_search_takes_wildcards_literally(
) {
    let app = spawn_app().await;
    let (a, _) = app.create_tenant_named("search-alpha").await;
    app.create_tenant_named("search-beta").await;
    let suspended = app
        .admin(Method::POST, &format!("/v1/tenants/{a}/suspend"), None)
        .await;
    assert_eq!(suspended.status(), 200);
    let summary: Value = app
        .admin(Method::GET, "/v1/fleet/summary", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["total"], 2, "{summary}");
    assert_eq!(summary["by_status"], json!({ "active": 1, "suspended": 1 }));
    assert_eq!(summary["by_tier"], json!({ "standard": 2 }));
    assert_eq!(summary["by_schema_version"], json!({ "1": 2 }));
    let names = |body: Value| -> Vec<String> {
        body["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["slug"].as_str().unwrap().to_string())
            .collect()
    };
    let search = |q: &str| {
        let path = format!("/v1/tenants?q={}", urlencode(q));
        let app = &app;
        async move {
            app.admin(Method::GET, &path, None)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(names(search("ALPHA").await), ["search-alpha"]);
    assert_eq!(names(search("Tenant search-b").await), ["search-beta"]);
    assert_eq!(names(search(&a).await), ["search-alpha"]);
    assert!(
        names(search("search_alpha").await).is_empty(),
        "_ is not a wildcard"
    );
    assert!(names(search("%").await).is_empty(), "% is not a wildcard");
    let (status, code, _) = envelope(
        app.admin(
            Method::GET,
            &format!("/v1/tenants?q={}", "x".repeat(101)),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_query"));
    let audit: Value = app
        .admin(Method::GET, "/v1/fleet/audit?limit=5", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["events"][0]["action"], "tenants.suspend", "{audit}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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

#[tokio::test]
async fn a_fleet_run_names_its_run_as_the_operations_subject_even_before_it_succeeds() {
    let app = spawn_app().await;
    app.create_tenant_named("subject-one").await;
    let started = app
        .admin(Method::POST, "/v1/migrations/runs", Some(json!({})))
        .await;
    assert_eq!(started.status(), 202);
    let op: Value = started.json().await.unwrap();
    let run = op["subject"].as_str().expect("the run id").to_string();
    let finished = app
        .wait_operation(&format!("/v1/operations/{}", op["id"].as_str().unwrap()))
        .await;
    assert_eq!(finished["subject"], run.as_str());
    let summary: Value = app
        .admin(Method::GET, &format!("/v1/migrations/runs/{run}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["run"]["id"], run.as_str());
}
