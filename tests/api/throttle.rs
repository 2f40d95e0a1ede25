//! Other people's refusals never lock out a valid credential, and one
//! tenant's valid key, however busy, costs the shared catalog nothing: the
//! throttle only answers bad credentials, and verified keys are kept in
//! memory.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{envelope, spawn_app_with, TestApp};
use crate::kit::{call, ok_json};

async fn mint_viewer_key(app: &TestApp, tenant: &str) -> String {
    let minted = ok_json(
        app.client
            .post(app.url(&format!("/v1/tenants/{tenant}/api-keys")))
            .bearer_auth(app.super_admin_token())
            .json(&json!({ "name": "reader", "role": "viewer" }))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    minted["key"].as_str().unwrap().to_string()
}

/// Sends `count` requests with `credential`, `clients` at a time, and
/// counts the answers by status.
async fn flood(
    app: &TestApp,
    path: &str,
    credential: &str,
    clients: usize,
    count: usize,
) -> BTreeMap<u16, usize> {
    let each = count / clients;
    let runs = (0..clients).map(|_| async move {
        let mut statuses = Vec::with_capacity(each);
        for _ in 0..each {
            let r = call(app, Method::GET, path, credential, None, None).await;
            statuses.push(r.status().as_u16());
        }
        statuses
    });
    let mut counted = BTreeMap::new();
    for status in join_all(runs).await.into_iter().flatten() {
        *counted.entry(status).or_default() += 1;
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_tokens_and_api_keys_from_an_address_flooded_with_bad_tokens_are_served_while_the_bad_ones_get_429(
) {
    // The default throttle: 60 refusals a minute per address.
    let app = spawn_app_with(|s| {
        s.router.rate_limit_scale = 0.0;
        s.http.workers = 2;
    })
    .await;
    assert_eq!(app.state().await.settings().http.denials_per_minute, 60);
    let t = app.create_tenant("shared-office", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let early_key = mint_viewer_key(&app, tid).await;
    let admin = app.super_admin_token();

    // An attacker behind the same address and the office's users, at once.
    let tenant_path = format!("/v1/tenants/{tid}");
    let (bad, good_tokens, good_keys) = tokio::join!(
        flood(&app, "/v1/agents", "not-a-token", 4, 400),
        flood(&app, &tenant_path, &admin, 2, 100),
        flood(&app, "/v1/agents", &early_key, 2, 100),
    );
    assert_eq!(good_tokens, BTreeMap::from([(200, 100)]), "{good_tokens:?}");
    assert_eq!(good_keys, BTreeMap::from([(200, 100)]), "{good_keys:?}");
    assert_eq!(bad.get(&401), Some(&60), "{bad:?}");
    assert_eq!(bad.get(&429), Some(&340), "{bad:?}");

    // Past its refusals, the address still signs in with a key it never
    // used before (its first check reads the catalog) and with a token.
    let fresh_key = mint_viewer_key(&app, tid).await;
    ok_json(
        call(&app, Method::GET, "/v1/agents", &fresh_key, None, None).await,
        200,
    )
    .await;
    let (status, code, _) = envelope(
        call(
            &app,
            Method::GET,
            "/v1/agents",
            "tpk_0123456789abcdef_nope",
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (429, "too_many_denials"));
    // A genuine token that has expired is told so, not throttled: its
    // holder must learn to renew it.
    let expired = crate::helpers::sign(tenant_plane::auth::Claims {
        sub: "late".into(),
        tenant_id: None,
        subtenant_id: None,
        role: tenant_plane::auth::Role::SuperAdmin,
        permissions: vec![],
        exp: chrono::Utc::now().timestamp() - 120,
        iat: None,
    });
    let (status, code, _) = envelope(app.get("/v1/tenants", Some(&expired)).await).await;
    assert_eq!((status, code.as_str()), (401, "token_expired"));
    // The console's sign-in follows the same rule.
    let signed_in = app
        .client
        .post(app.url("/console/session"))
        .json(&json!({ "credential": admin }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 201);
    let refused = app
        .client
        .post(app.url("/console/session"))
        .json(&json!({ "credential": "not-a-token" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_with_one_tenants_valid_api_key_is_served_from_memory_even_while_the_catalog_refuses_every_connection(
) {
    let app = spawn_app_with(|s| {
        s.router.rate_limit_scale = 0.0;
        s.http.workers = 2;
    })
    .await;
    let t = app.create_tenant("busy-reader", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let key = mint_viewer_key(&app, tid).await;
    ok_json(
        call(&app, Method::GET, "/v1/agents", &key, None, None).await,
        200,
    )
    .await;

    // Nothing may reach the catalog now: every request of the flood that
    // needed a catalog query would fail.
    let admin = app.server.connect("postgres").await;
    let catalog = tenant_plane::sql::quote_ident(&app.catalog_db);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {catalog} WITH ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = {};",
            tenant_plane::sql::quote_literal(&app.catalog_db)
        ))
        .await
        .unwrap();
    let flooded = flood(&app, "/v1/agents", &key, 8, 2_000).await;
    // The control plane, which does need the catalog, says so quickly.
    let control = app.get("/v1/tenants", Some(&app.super_admin_token())).await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {catalog} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    assert_eq!(flooded, BTreeMap::from([(200, 2_000)]), "{flooded:?}");
    assert_eq!(control.status(), 503);
    // Once the catalog is back, so is the control plane.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app
        .get("/v1/tenants", Some(&app.super_admin_token()))
        .await
        .status()
        != 200
    {
        assert!(std::time::Instant::now() < deadline, "no recovery");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A client bound to `from` (another loopback address: another client).
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_api_keys_never_delays_a_known_key_and_the_guessing_address_soon_gets_429(
) {
    let app = spawn_app_with(|s| {
        s.router.rate_limit_scale = 0.0;
        s.http.workers = 2;
    })
    .await;
    let t = app.create_tenant("guessed-at", json!({})).await;
    let key = mint_viewer_key(&app, t["id"].as_str().unwrap()).await;
    ok_json(
        call(&app, Method::GET, "/v1/agents", &key, None, None).await,
        200,
    )
    .await;
    let attacker = client_from("127.0.0.2");
    let url = app.url("/v1/agents");
    let guesses = (0..16).map(|_| {
        let (attacker, url) = (attacker.clone(), url.clone());
        async move {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                let guess = format!(
                    "tpk_{}_{}",
                    hex::encode(rand::random::<[u8; 8]>()),
                    hex::encode(rand::random::<[u8; 32]>())
                );
                let r = attacker.get(&url).bearer_auth(guess).send().await.unwrap();
                statuses.push(r.status().as_u16());
            }
            statuses
        }
    });
    let (guessed, known) = tokio::join!(join_all(guesses), flood(&app, "/v1/agents", &key, 2, 200));
    let mut counted = BTreeMap::<u16, usize>::new();
    for status in guessed.into_iter().flatten() {
        *counted.entry(status).or_default() += 1;
    }
    assert_eq!(known, BTreeMap::from([(200, 200)]), "{known:?}");
    // Each guess is refused; past 60 refusals the address gets 429 (one
    // whose lookup found no free turn is 429 too: it may not queue).
    assert_eq!(counted.get(&401), Some(&60), "{counted:?}");
    assert_eq!(counted.get(&429), Some(&580), "{counted:?}");
}
