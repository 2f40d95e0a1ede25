//! Signing out of the console ends the session on every replica: a copy of
//! the cookie is refused from then on, and the record of it is pruned once
//! the session would have expired. Behind a TLS proxy the cookie carries
//! the `__Host-` prefix.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{envelope, spawn_app_on, spawn_app_with, test_settings, TestApp};
use crate::kit::console::{pair, sign_in, with_cookie};

async fn status_with_cookie(app: &TestApp, cookie: &str) -> u16 {
    with_cookie(app, Method::GET, "/console/session", cookie, None, None)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_copied_session_cookie_is_refused_on_every_replica_once_its_session_signs_out() {
    let (settings, catalog_db) = test_settings();
    let pg = crate::cluster::shared().clone();
    let app = spawn_app_on(settings.clone(), catalog_db.clone(), pg.clone()).await;
    let replica = spawn_app_on(settings, catalog_db, pg).await;
    let (status, set_cookie, session) = sign_in(&app, &app.super_admin_token()).await;
    assert_eq!(status, 201, "{session}");
    let cookie = pair(&set_cookie.unwrap());
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    // The copy works on both replicas while the session lasts.
    assert_eq!(status_with_cookie(&app, &cookie).await, 200);
    assert_eq!(status_with_cookie(&replica, &cookie).await, 200);
    let summary = with_cookie(
        &replica,
        Method::GET,
        "/v1/fleet/summary",
        &cookie,
        None,
        None,
    );
    assert_eq!(summary.await.status(), 200);

    let out = with_cookie(
        &app,
        Method::DELETE,
        "/console/session",
        &cookie,
        Some(&csrf),
        None,
    );
    assert_eq!(out.await.status(), 204);
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM revoked_console_sessions")
            .await,
        1
    );
    // At once where it signed out.
    let (status, code, _) =
        envelope(with_cookie(&app, Method::GET, "/console/session", &cookie, None, None).await)
            .await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    let read = with_cookie(&app, Method::GET, "/v1/fleet/summary", &cookie, None, None).await;
    assert_eq!(read.status(), 401);
    // The other replica trusts its memory of a live session for a second at most.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while status_with_cookie(&replica, &cookie).await != 401 {
        assert!(
            Instant::now() < deadline,
            "the replica still takes the copy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let write = with_cookie(
        &replica,
        Method::POST,
        "/v1/tenants",
        &cookie,
        Some(&csrf),
        Some(json!({ "slug": "after-sign-out", "name": "After" })),
    )
    .await;
    assert_eq!(write.status(), 401);
    // Signing out again is harmless, and audited once.
    let again = with_cookie(
        &replica,
        Method::DELETE,
        "/console/session",
        &cookie,
        Some(&csrf),
        None,
    );
    assert_eq!(again.await.status(), 204);
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM audit_log WHERE action = 'console.sign_out'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_signed_out_sessions_record_is_pruned_by_retention_once_the_session_would_have_expired() {
    let app = spawn_app_with(|_| {}).await;
    app.catalog_db()
        .await
        .batch_execute(
            "INSERT INTO revoked_console_sessions (id, expires_at)
                  VALUES ('expired', now() - interval '1 minute'),
                         ('current', now() + interval '1 hour')",
        )
        .await
        .unwrap();
    let report = app.state().await.reconciler().run_once().await.unwrap();
    assert_eq!(
        report.pruned.revoked_console_sessions, 1,
        "{:?}",
        report.pruned
    );
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM revoked_console_sessions WHERE id = 'current'")
            .await,
        1
    );
}

#[tokio::test]
async fn behind_a_trusted_tls_proxy_the_session_cookie_is_named_with_the_host_prefix_and_read_under_it(
) {
    let app =
        spawn_app_with(|s| s.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let response = app
        .client
        .post(app.url("/console/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({ "credential": app.super_admin_token() }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.starts_with("__Host-tp_session="), "{set_cookie}");
    for attribute in ["; Secure", "; Path=/", "; HttpOnly"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    let session: serde_json::Value = response.json().await.unwrap();
    let csrf = session["csrf_token"].as_str().unwrap();
    let cookie = pair(&set_cookie);
    let value = cookie.split_once('=').unwrap().1;
    let over_tls = |cookie: String, method: Method, csrf: Option<&str>| {
        let mut req = app
            .client
            .request(method, app.url("/console/session"))
            .header("cookie", cookie)
            .header("x-forwarded-proto", "https");
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        req.send()
    };
    assert_eq!(
        over_tls(cookie.clone(), Method::GET, None)
            .await
            .unwrap()
            .status(),
        200
    );
    // Over TLS only the prefixed name is read; over plain HTTP only the plain one.
    let plain_name = format!("tp_session={value}");
    assert_eq!(
        over_tls(plain_name, Method::GET, None)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(status_with_cookie(&app, &cookie).await, 401);
    let out = over_tls(cookie.clone(), Method::DELETE, Some(csrf))
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("__Host-tp_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(
        over_tls(cookie, Method::GET, None).await.unwrap().status(),
        401
    );
}
