//! `tenant-plane identity-provider`: the same commands as the API, with the
//! provider's address allowed as a user allows it (an environment variable).

use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::kit::cli::{cli, cli_env};
use crate::kit::oidc::{provider_body, OidcProvider};

const ALLOW: (&str, &str) = ("TENANT_PLANE_IDENTITY_ALLOWED_ADDRESSES", "[127.0.0.1/32]");

#[tokio::test]
async fn the_cli_sets_shows_and_removes_a_provider_reached_only_where_the_variable_allows() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("sso-cli", json!({})).await;
    let id = tenant["id"].as_str().unwrap();
    let idp = OidcProvider::start(vec![], json!({}));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provider.json");
    let body = provider_body(
        &idp.issuer(),
        json!([{ "group": "care-admins", "role": "tenant_admin" }]),
    );
    std::fs::write(&file, body.to_string()).unwrap();
    let file = file.to_str().unwrap();

    // Without the variable, the loopback provider is refused.
    let (code, _, err) = cli(&app, &["identity-provider", "set", id, "--from", file]).await;
    assert_ne!(code, 0);
    assert!(err.contains("identity.allowed_addresses"), "{err}");

    let set = ["identity-provider", "set", id, "--from", file, "--json"];
    let (code, out, err) = cli_env(&app, &set, &[ALLOW]).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["issuer"], idp.issuer());
    assert_eq!(shown["jwks_uri"], format!("{}/jwks", idp.issuer()));

    let (code, out, err) = cli(&app, &["identity-provider", "show", id]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("care-admins -> tenant_admin"), "{out}");
    // The API shows what the CLI set.
    let api = app
        .admin(
            reqwest::Method::GET,
            &format!("/v1/tenants/{id}/identity-provider"),
            None,
        )
        .await;
    let api: Value = api.json().await.unwrap();
    assert_eq!(api["issuer"], idp.issuer());

    let (code, _, err) = cli(&app, &["identity-provider", "remove", id]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&app, &["identity-provider", "show", id]).await;
    assert_ne!(code, 0);
    assert!(err.contains("no identity provider"), "{err}");
}
