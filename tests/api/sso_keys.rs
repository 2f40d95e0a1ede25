//! A provider's keys as the service keeps them: in force while the
//! provider cannot be reached, until they expire; and fetched over HTTPS
//! from a provider whose CA the operator names (`identity.ca_file`).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp};
use crate::kit::ca::TestCa;
use crate::kit::oidc::{allow_loopback, provider_body, set_provider, user, OidcProvider};
use crate::kit::{expect_error, ok_json};

async fn agents(app: &TestApp, token: &str) -> reqwest::Response {
    app.request(Method::GET, "/v1/agents")
        .bearer(token)
        .send()
        .await
}

fn admins() -> serde_json::Value {
    json!([{ "group": "care-admins", "role": "tenant_admin" }])
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_leaves_its_keys_in_force_until_they_expire() {
    let app = spawn_app_with(|s| {
        allow_loopback(s);
        // Its answers carry no caching headers: this many seconds.
        s.identity.keys_ttl_secs = 2;
        s.identity.refetch_secs = 1;
    })
    .await;
    let tenant = app.create_tenant("sso-outage", json!({})).await;
    let id = tenant["id"].as_str().unwrap();
    let mut idp = OidcProvider::start(
        vec![user("ana", json!({ "groups": ["care-admins"] }))],
        json!({}),
    );
    // Before the keys are first fetched (setting the provider reads them):
    // they last at least the TTL from here.
    let fetched = Instant::now();
    ok_json(
        set_provider(&app, id, &provider_body(&idp.issuer(), admins())).await,
        200,
    )
    .await;
    let token = idp.token("ana").await;
    ok_json(agents(&app, &token).await, 200).await;
    idp.stop();
    // Still in force: nothing is fetched while the keys last.
    ok_json(agents(&app, &token).await, 200).await;
    // Once they expire, the provider's tokens get 503 until it is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = agents(&app, &token).await;
        if answer.status() == 503 {
            expect_error(answer, 503, "identity_provider_unavailable").await;
            break;
        }
        assert_eq!(
            answer.status(),
            200,
            "the cached keys verify until they expire"
        );
        assert!(Instant::now() < deadline, "the keys never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        fetched.elapsed() >= Duration::from_secs(2),
        "kept for keys_ttl_secs"
    );
}

#[tokio::test]
async fn a_provider_over_https_is_reached_through_the_named_ca_and_refused_without_it() {
    let ca = TestCa::new("sso test CA");
    let idp = OidcProvider::start_tls(vec![user("ana", json!({ "groups": ["care-admins"] }))], &ca);
    assert!(idp.issuer().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();

    // Without the CA, the provider's certificate is not trusted.
    let plain = spawn_app_with(allow_loopback).await;
    let tenant = plain.create_tenant("sso-untrusted", json!({})).await;
    let body = provider_body(&idp.issuer(), admins());
    let refused = set_provider(&plain, tenant["id"].as_str().unwrap(), &body).await;
    expect_error(refused, 422, "identity_provider_unreachable").await;

    let app = spawn_app_with(|s| {
        allow_loopback(s);
        s.identity.ca_file = Some(ca_file.clone());
    })
    .await;
    let tenant = app.create_tenant("sso-tls", json!({})).await;
    let set = ok_json(
        set_provider(&app, tenant["id"].as_str().unwrap(), &body).await,
        200,
    )
    .await;
    assert_eq!(set["jwks_uri"], format!("{}/jwks", idp.issuer()));
    let token = idp.token("ana").await;
    ok_json(agents(&app, &token).await, 200).await;
}
