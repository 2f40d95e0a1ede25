//! Tokens of a tenant's own identity provider, from a real OpenID provider
//! (npm's oidc-provider): they act for that tenant alone, never as
//! super_admin, follow the provider's key rotation, and made-up `kid`s
//! cannot make the service hammer the provider.

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};
use crate::kit::oidc::{allow_loopback, provider_body, set_provider, user, OidcProvider};
use crate::kit::{expect_error, ok_json};

const ADMINS: &str = "care-admins";

struct Tenant {
    id: String,
    provider: OidcProvider,
}

/// A tenant whose provider knows `users` (each a `user(...)`), mapping the
/// group `care-admins` to tenant_admin.
async fn tenant_with_provider(app: &TestApp, slug: &str, users: Vec<Value>) -> Tenant {
    let provider = OidcProvider::start(users, json!({}));
    let tenant = app.create_tenant(slug, json!({})).await;
    let id = tenant["id"].as_str().unwrap().to_string();
    let body = provider_body(
        &provider.issuer(),
        json!([{ "group": ADMINS, "role": "tenant_admin" }]),
    );
    let set = ok_json(set_provider(app, &id, &body).await, 200).await;
    assert_eq!(set["discovered"], true);
    assert_eq!(set["jwks_uri"], format!("{}/jwks", provider.issuer()));
    Tenant { id, provider }
}

async fn get(
    app: &TestApp,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.request(Method::GET, path).bearer(token);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await
}

#[tokio::test]
async fn a_user_of_tenant_a_provider_reads_a_and_is_refused_b_even_with_b_named_in_every_header() {
    let app = spawn_app_with(allow_loopback).await;
    let a = tenant_with_provider(
        &app,
        "sso-a",
        vec![user("ana", json!({ "groups": [ADMINS] }))],
    )
    .await;
    let b = tenant_with_provider(
        &app,
        "sso-b",
        vec![user("bo", json!({ "groups": [ADMINS] }))],
    )
    .await;
    let ana = a.provider.token("ana").await;
    let bo = b.provider.token("bo").await;

    let agent = app
        .request(Method::POST, "/v1/agents")
        .bearer(&ana)
        .json(&json!({ "name": "Ana's agent", "type": "voice" }))
        .send()
        .await;
    ok_json(agent, 201).await;
    let mine = ok_json(get(&app, &ana, "/v1/agents", &[]).await, 200).await;
    assert_eq!(mine["agents"].as_array().unwrap().len(), 1, "{mine}");
    let own = ok_json(
        get(&app, &ana, &format!("/v1/tenants/{}", a.id), &[]).await,
        200,
    )
    .await;
    assert_eq!(own["id"], a.id);

    let every_header = [
        ("x-tenant-id", b.id.as_str()),
        ("x-subtenant-id", b.id.as_str()),
    ];
    expect_error(
        get(&app, &ana, "/v1/agents", &every_header).await,
        403,
        "cross_tenant",
    )
    .await;
    expect_error(
        get(&app, &ana, "/v1/agents", &every_header[..1]).await,
        403,
        "cross_tenant",
    )
    .await;
    expect_error(
        get(&app, &ana, &format!("/v1/tenants/{}", b.id), &[]).await,
        403,
        "forbidden",
    )
    .await;
    let b_provider = format!("/v1/tenants/{}/identity-provider", b.id);
    expect_error(get(&app, &ana, &b_provider, &[]).await, 403, "forbidden").await;
    // Never the fleet's: no super_admin rights.
    expect_error(get(&app, &ana, "/v1/servers", &[]).await, 403, "forbidden").await;
    expect_error(get(&app, &ana, "/v1/tenants", &[]).await, 403, "forbidden").await;

    // B's own user sees B's rows, not A's agent.
    let theirs = ok_json(get(&app, &bo, "/v1/agents", &[]).await, 200).await;
    assert_eq!(theirs["agents"].as_array().unwrap().len(), 0, "{theirs}");
    // A's user is the provider's `sub`, as the audit shows it.
    let audit = ok_json(get(&app, &ana, "/v1/audit", &[]).await, 200).await;
    assert!(audit.to_string().contains("ana"), "{audit}");
}

#[tokio::test]
async fn provider_tokens_claiming_super_admin_another_tenant_or_no_mapped_group_are_refused() {
    let app = spawn_app_with(allow_loopback).await;
    let b = app.create_tenant("sso-other", json!({})).await;
    let b_id = b["id"].as_str().unwrap();
    let users = vec![
        user(
            "root-wannabe",
            json!({ "role": "super_admin", "groups": [ADMINS] }),
        ),
        user(
            "roles-wannabe",
            json!({ "roles": ["super_admin"], "groups": [ADMINS] }),
        ),
        user("wanderer", json!({ "tenant_id": b_id, "groups": [ADMINS] })),
        user("nobody", json!({ "groups": ["sales"] })),
    ];
    let a = tenant_with_provider(&app, "sso-claims", users).await;
    for name in ["root-wannabe", "roles-wannabe"] {
        let token = a.provider.token(name).await;
        for path in ["/v1/agents", "/v1/tenants", "/v1/servers"] {
            expect_error(get(&app, &token, path, &[]).await, 403, "claims_refused").await;
        }
    }
    let wanderer = a.provider.token("wanderer").await;
    expect_error(
        get(&app, &wanderer, "/v1/agents", &[]).await,
        403,
        "cross_tenant",
    )
    .await;
    let nobody = a.provider.token("nobody").await;
    let why = expect_error(
        get(&app, &nobody, "/v1/agents", &[]).await,
        403,
        "no_role_mapped",
    )
    .await;
    assert!(why.contains("map to no role"), "{why}");
    let denials = app.denials().await;
    assert!(
        denials
            .iter()
            .any(|(_, reason, _, n)| reason == "cross_tenant" && *n >= 1),
        "{denials:?}"
    );
}

#[tokio::test]
async fn a_provider_rotating_its_key_is_followed_without_a_restart() {
    let app = spawn_app_with(|s| {
        allow_loopback(s);
        // A new kid is fetched at most once a second here (5 s by default).
        s.identity.refetch_secs = 1;
    })
    .await;
    let mut a = tenant_with_provider(
        &app,
        "sso-rotate",
        vec![user("ana", json!({ "groups": [ADMINS] }))],
    )
    .await;
    let before = a.provider.token("ana").await;
    ok_json(get(&app, &before, "/v1/agents", &[]).await, 200).await;
    a.provider.rotate_key();
    let after = a.provider.token("ana").await;
    assert_ne!(
        kid(&before),
        kid(&after),
        "the provider signs with a new key"
    );
    // Known within a refetch interval of the last fetch, without a restart.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let answer = get(&app, &after, "/v1/agents", &[]).await;
        if answer.status() == 200 {
            break;
        }
        assert_eq!(answer.status(), 401);
        assert!(
            std::time::Instant::now() < deadline,
            "the new key was never fetched"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_thousand_tokens_with_made_up_kids_cost_the_provider_a_handful_of_fetches() {
    let app = spawn_app_with(|s| {
        allow_loopback(s);
        // The flood is one address's: its refusals must stay 401s, not 429s.
        s.http.denials_per_minute = 1_000_000;
        // One fetch a second at most, so a flood of a few seconds shows the
        // limit working, not only the first fetch's shadow.
        s.identity.refetch_secs = 1;
    })
    .await;
    let a = tenant_with_provider(
        &app,
        "sso-flood",
        vec![user("ana", json!({ "groups": [ADMINS] }))],
    )
    .await;
    let genuine = a.provider.token("ana").await;
    ok_json(get(&app, &genuine, "/v1/agents", &[]).await, 200).await;
    let before = a.provider.jwks_fetches().await;
    let forged: Vec<String> = (0..1000)
        .map(|i| with_kid(&genuine, &format!("made-up-{i}")))
        .collect();
    let started = std::time::Instant::now();
    for chunk in forged.chunks(50) {
        let answers =
            futures_util::future::join_all(chunk.iter().map(|t| get(&app, t, "/v1/agents", &[])))
                .await;
        for answer in answers {
            assert_eq!(answer.status(), 401);
        }
        // Spread over about three seconds: three refetch intervals.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let fetches = a.provider.jwks_fetches().await - before;
    eprintln!("1,000 made-up kids over {seconds:.1} s: {fetches} JWKS fetches");
    assert!(
        fetches >= 1 && fetches as f64 <= seconds.ceil() + 1.0,
        "1,000 made-up kids over {seconds:.1} s made {fetches} JWKS fetches"
    );
    // The genuine token still works.
    ok_json(get(&app, &genuine, "/v1/agents", &[]).await, 200).await;
}

/// The token's header `kid`.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

/// `token` with its header's `kid` replaced (its signature no longer fits).
fn with_kid(token: &str, kid: &str) -> String {
    let (header, rest) = token.split_once('.').unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let mut header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"] = kid.into();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
    format!("{header}.{rest}")
}
