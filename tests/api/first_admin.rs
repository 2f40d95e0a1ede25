//! The first admin: `POST /v1/tenants` with `admin` answers, this once, a
//! `tenant_admin` API key for them that works as soon as the tenant is
//! made, for the control and the data plane; a retry with the same
//! `Idempotency-Key` mints no second key and repeats no secret. The CLI
//! does the same.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};
use crate::kit::browser::{self, sign_in};
use crate::kit::cli::cli;
use crate::kit::{call, ok_json};

async fn create(app: &TestApp, body: Value, idempotency_key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/tenants"))
        .bearer_auth(app.super_admin_token())
        .header("Idempotency-Key", idempotency_key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn live_keys(app: &TestApp, tenant: &str) -> Vec<Value> {
    let path = format!("/v1/tenants/{tenant}/api-keys");
    let page = ok_json(app.admin(Method::GET, &path, None).await, 200).await;
    page["api_keys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_first_admins_key_works_once_the_tenant_is_made_and_a_retry_mints_no_second_key() {
    let app = spawn_app().await;
    let body = json!({
        "name": "Acme", "slug": "acme-first",
        "admin": { "subject": "okta|00u1ana", "email": "ana@acme.example" }
    });
    let made = ok_json(create(&app, body.clone(), "first-admin-1").await, 201).await;
    assert_eq!(made["status"], "active", "{made}");
    let tenant = made["id"].as_str().unwrap().to_string();
    let admin_key = &made["admin_key"];
    assert_eq!(admin_key["role"], "tenant_admin", "{made}");
    assert_eq!(admin_key["name"], "first admin ana@acme.example");
    assert!(
        admin_key["expires_at"].is_null(),
        "no end of its own: {made}"
    );
    let secret = admin_key["key"].as_str().unwrap().to_string();

    // The key reads its tenant and writes its data at once.
    let path = format!("/v1/tenants/{tenant}");
    let own = call(&app, Method::GET, &path, &secret, None, None).await;
    assert_eq!(own.status(), 200);
    let agent = json!({ "name": "Front desk", "type": "chat" });
    let added = call(&app, Method::POST, "/v1/agents", &secret, None, Some(agent)).await;
    assert_eq!(added.status(), 201);
    // And it can mint the tenant's next key, as its admin.
    let next = json!({ "name": "ops", "role": "viewer" });
    let keys = format!("/v1/tenants/{tenant}/api-keys");
    let minted = call(&app, Method::POST, &keys, &secret, None, Some(next)).await;
    assert_eq!(minted.status(), 201);

    // A retry: the same tenant and key, no secret, no second key.
    let replay = create(&app, body, "first-admin-1").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay = ok_json(replay, 201).await;
    assert_eq!(replay["id"], made["id"]);
    assert_eq!(replay["admin_key"]["id"], admin_key["id"]);
    assert!(replay["admin_key"]["key"].is_null(), "{replay}");
    let live = live_keys(&app, &tenant).await;
    let first: Vec<&Value> = live
        .iter()
        .filter(|k| k["role"] == "tenant_admin")
        .collect();
    assert_eq!(first.len(), 1, "{live:?}");
    // The secret is kept nowhere in the catalog's replay store.
    let stored = app
        .catalog_count(&format!(
            "SELECT count(*) FROM idempotency_keys WHERE response_body::text LIKE '%{secret}%'"
        ))
        .await;
    assert_eq!(stored, 0);

    // Without `admin`, no key.
    let plain = json!({ "name": "Plain", "slug": "plain-first" });
    let plain = ok_json(create(&app, plain, "first-admin-2").await, 201).await;
    assert!(plain.get("admin_key").is_none(), "{plain}");
}

#[tokio::test]
async fn a_malformed_first_admin_is_refused_and_makes_no_tenant() {
    let app = spawn_app().await;
    for (n, admin) in [
        json!({ "subject": "ana", "email": "not-an-address" }),
        json!({ "subject": "", "email": "ana@acme.example" }),
        json!({ "subject": "has space", "email": "ana@acme.example" }),
        json!({ "subject": "ana" }),
        json!({ "subject": "ana", "email": "ana@acme.example", "role": "super_admin" }),
        json!("ana@acme.example"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({ "name": "Bad", "slug": format!("bad-admin-{n}"), "admin": admin });
        let answer = create(&app, body, &format!("bad-{n}")).await;
        let status = answer.status().as_u16();
        let envelope: Value = answer.json().await.unwrap();
        assert!(matches!(status, 400 | 422), "{status} {envelope}");
        assert!(envelope["error"]["code"].is_string(), "{envelope}");
    }
    let made = app
        .catalog_count("SELECT count(*) FROM tenants WHERE slug LIKE 'bad-admin-%'")
        .await;
    assert_eq!(made, 0);
}

#[tokio::test]
async fn tenant_create_on_the_command_line_prints_the_first_admins_key_once() {
    let app = spawn_app().await;
    let (code, out, err) = cli(
        &app,
        &[
            "tenant",
            "create",
            "--name",
            "Beta",
            "--slug",
            "beta-first",
            "--admin-subject",
            "kc:beta-admin",
            "--admin-email",
            "admin@beta.example",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    let secret = made["admin_key"]["key"].as_str().unwrap();
    let path = format!("/v1/tenants/{}", made["id"].as_str().unwrap());
    assert_eq!(
        call(&app, Method::GET, &path, secret, None, None)
            .await
            .status(),
        200
    );
    // An e-mail without a subject is refused before anything is made.
    let (code, _, _) = cli(
        &app,
        &[
            "tenant",
            "create",
            "--name",
            "Gamma",
            "--slug",
            "gamma-first",
            "--admin-email",
            "a@b.example",
        ],
    )
    .await;
    assert_ne!(code, 0);
}

#[tokio::test]
async fn the_console_makes_a_tenant_with_its_first_admin_and_shows_the_key_once() {
    let app = spawn_app().await;
    let Some(b) = browser::start().await else {
        return;
    };
    sign_in(&b, &app.url("/console/"), &app.super_admin_token()).await;
    b.client.goto(&app.url("/console/#/fleet")).await.unwrap();
    b.until(
        "the create form",
        20,
        "return !!document.querySelector('#new-admin-email')",
    )
    .await;
    b.type_into("#new-slug", "console-first").await;
    b.type_into("#new-name", "Console First").await;
    b.type_into("#new-admin-subject", "auth0|console-admin")
        .await;
    b.type_into("#new-admin-email", "admin@console.example")
        .await;
    b.click("#create-tenant button[type=submit]").await;
    b.until(
        "the first admin's key",
        60,
        "return !!document.querySelector('#first-admin-key .secret')",
    )
    .await;
    let secret = b.text("#first-admin-key .secret").await;
    let made = app
        .catalog_db()
        .await
        .query_one(
            "SELECT id::text FROM tenants WHERE slug = 'console-first'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    let path = format!("/v1/tenants/{made}");
    assert_eq!(
        call(&app, Method::GET, &path, &secret, None, None)
            .await
            .status(),
        200
    );
    b.close().await;
}
