//! Setting a tenant's identity provider: addresses refused before any
//! connection, subtenants inheriting their root's provider, issuers held
//! by one tenant, and the first admin pre-mapped to tenant_admin.

use std::io::ErrorKind;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};
use crate::kit::oidc::{allow_loopback, provider_body, set_provider, user, OidcProvider};
use crate::kit::{expect_error, ok_json};

async fn provider_path(app: &TestApp, tenant: &str, method: Method) -> reqwest::Response {
    app.admin(
        method,
        &format!("/v1/tenants/{tenant}/identity-provider"),
        None,
    )
    .await
}

#[tokio::test]
async fn a_provider_at_a_private_or_loopback_address_is_refused_before_any_connection() {
    // The default settings: no address allowed.
    let app = spawn_app().await;
    let tenant = app.create_tenant("sso-ssrf", json!({})).await;
    let id = tenant["id"].as_str().unwrap();
    // Something listens at the loopback address, and must hear nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    for issuer in [
        format!("http://127.0.0.1:{port}"),
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}/realms/acme"),
        "https://10.0.0.1".to_string(),
        "https://169.254.169.254/latest".to_string(),
        "https://[fd00::1]/".to_string(),
    ] {
        let body = provider_body(&issuer, json!([]));
        let why = expect_error(
            set_provider(&app, id, &body).await,
            422,
            "identity_provider_address_refused",
        )
        .await;
        assert!(
            why.contains("identity.allowed_addresses"),
            "{issuer}: {why}"
        );
    }
    // A public issuer may not name keys at a private address either.
    let mut body = provider_body("https://203.0.113.9", json!([]));
    body["jwks_uri"] = format!("https://127.0.0.1:{port}/jwks").into();
    expect_error(
        set_provider(&app, id, &body).await,
        422,
        "identity_provider_address_refused",
    )
    .await;
    // And a public address is reached over HTTPS only.
    let body = provider_body("http://203.0.113.9", json!([]));
    expect_error(
        set_provider(&app, id, &body).await,
        422,
        "identity_provider_address_refused",
    )
    .await;
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "no connection reached the listener"
    );
    expect_error(
        provider_path(&app, id, Method::GET).await,
        404,
        "identity_provider_not_found",
    )
    .await;
}

#[tokio::test]
async fn subtenants_inherit_their_roots_provider_and_set_their_own_only_where_the_root_allows() {
    let app = spawn_app_with(allow_loopback).await;
    let root = app.create_tenant("sso-root", json!({})).await;
    let root_id = root["id"].as_str().unwrap();
    let sub = app.create_subtenant(root_id, "sso-root-eu").await;
    let sub_id = sub["id"].as_str().unwrap();
    let root_idp = OidcProvider::start(
        vec![user("eve", json!({ "groups": ["eu-agents"] }))],
        json!({}),
    );
    let mappings = json!([
        { "group": "care-admins", "role": "tenant_admin" },
        { "group": "eu-agents", "role": "agent", "subtenant_id": sub_id },
    ]);
    let body = provider_body(&root_idp.issuer(), mappings.clone());
    ok_json(set_provider(&app, root_id, &body).await, 200).await;

    let inherited = ok_json(provider_path(&app, sub_id, Method::GET).await, 200).await;
    assert_eq!(
        (
            inherited["inherited"].clone(),
            inherited["tenant_id"].clone()
        ),
        (json!(true), json!(root_id))
    );
    // A mapped user of the root's provider is held to the subtenant.
    let eve = root_idp.token("eve").await;
    let reads = app
        .request(Method::GET, "/v1/agents")
        .bearer(&eve)
        .send()
        .await;
    ok_json(reads, 200).await;

    let sub_idp = OidcProvider::start(
        vec![user("sam", json!({ "groups": ["sub-admins"] }))],
        json!({}),
    );
    let own = provider_body(
        &sub_idp.issuer(),
        json!([{ "group": "sub-admins", "role": "subtenant_admin" }]),
    );
    expect_error(
        set_provider(&app, sub_id, &own).await,
        409,
        "identity_provider_inherited",
    )
    .await;
    let mut allowing = provider_body(&root_idp.issuer(), mappings);
    allowing["subtenants_may_override"] = true.into();
    ok_json(set_provider(&app, root_id, &allowing).await, 200).await;
    let admin_of_sub = provider_body(
        &sub_idp.issuer(),
        json!([{ "group": "sub-admins", "role": "tenant_admin" }]),
    );
    expect_error(
        set_provider(&app, sub_id, &admin_of_sub).await,
        422,
        "identity_provider_invalid",
    )
    .await;
    let set = ok_json(set_provider(&app, sub_id, &own).await, 200).await;
    assert_eq!(set["inherited"], false);
    let sam = sub_idp.token("sam").await;
    ok_json(
        app.request(Method::GET, "/v1/agents")
            .bearer(&sam)
            .send()
            .await,
        200,
    )
    .await;
    // Held to its subtenant: the root's own keys are not its to list.
    let keys = app
        .request(Method::GET, &format!("/v1/tenants/{root_id}/api-keys"))
        .bearer(&sam)
        .send()
        .await;
    assert_eq!(keys.status(), 403);

    // The root cannot take the allowance back while the subtenant has its own.
    let forbidding = provider_body(&root_idp.issuer(), json!([]));
    expect_error(
        set_provider(&app, root_id, &forbidding).await,
        409,
        "subtenant_providers_exist",
    )
    .await;

    // An issuer is one tenant's.
    let other = app.create_tenant("sso-thief", json!({})).await;
    let taken = provider_body(&root_idp.issuer(), json!([]));
    expect_error(
        set_provider(&app, other["id"].as_str().unwrap(), &taken).await,
        409,
        "issuer_taken",
    )
    .await;

    // Removed, the subtenant falls back to its root's; removed twice, 404.
    assert_eq!(
        provider_path(&app, sub_id, Method::DELETE).await.status(),
        204
    );
    let back = ok_json(provider_path(&app, sub_id, Method::GET).await, 200).await;
    assert_eq!(back["inherited"], true);
    expect_error(
        provider_path(&app, sub_id, Method::DELETE).await,
        404,
        "identity_provider_not_found",
    )
    .await;
    // Its tokens stop working with it.
    let gone = app
        .request(Method::GET, "/v1/agents")
        .bearer(&sam)
        .send()
        .await;
    assert_eq!(gone.status(), 401);
    let audit = ok_json(app.admin(Method::GET, "/v1/fleet/audit", None).await, 200).await;
    let text = audit.to_string();
    assert!(
        text.contains("identity_provider.set") && text.contains("identity_provider.remove"),
        "{audit}"
    );
}

#[tokio::test]
async fn the_first_admin_of_a_tenant_with_a_provider_is_its_tenant_admin_by_subject() {
    let app = spawn_app_with(allow_loopback).await;
    let made = app
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Founded", "slug": "sso-founded",
                "admin": { "subject": "founder", "email": "founder@acme.example" } })),
        )
        .await;
    let made = ok_json(made, 201).await;
    let id = made["id"].as_str().unwrap();
    let idp = OidcProvider::start(
        vec![
            user("founder", json!({})),
            user("stranger", json!({ "groups": ["x"] })),
        ],
        json!({}),
    );
    // No mapping at all: the first admin alone gets in.
    ok_json(
        set_provider(&app, id, &provider_body(&idp.issuer(), json!([]))).await,
        200,
    )
    .await;
    let founder = idp.token("founder").await;
    let keys = app
        .request(Method::GET, &format!("/v1/tenants/{id}/api-keys"))
        .bearer(&founder)
        .send()
        .await;
    ok_json(keys, 200).await;
    let stranger = idp.token("stranger").await;
    let refused = app
        .request(Method::GET, "/v1/agents")
        .bearer(&stranger)
        .send()
        .await;
    expect_error(refused, 403, "no_role_mapped").await;
}
