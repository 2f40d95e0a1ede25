//! Who logs in through the gateway: a tenant's slug and one of its keys,
//! checked by SCRAM; refused alike when anything is wrong, and refused with
//! what it lacks when the key's rights cannot be held by a login role.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::kit::gateway::{connect, mint_key, refusal, tenant_with_key};
use crate::kit::{call, ok_json};

#[tokio::test]
async fn a_wrong_key_another_tenants_key_and_an_unknown_tenant_all_fail_alike() {
    let app = spawn_app().await;
    let (_, a, a_key) = tenant_with_key(&app, "wire-a", "tenant_admin").await;
    let (_, _, b_key) = tenant_with_key(&app, "wire-b", "tenant_admin").await;
    let failed = |user: &str| format!("28P01: password authentication failed for user \"{user}\"");
    assert_eq!(refusal(&app, &a, &b_key).await, failed(&a));
    assert_eq!(refusal(&app, &a, "tpk_0000_guessed").await, failed(&a));
    assert_eq!(
        refusal(&app, "no-such-tenant", &a_key).await,
        failed("no-such-tenant")
    );
    assert_eq!(
        refusal(&app, "", &a_key).await,
        "28000: no user name: connect as your tenant's slug"
    );
    // The right key still works after all that.
    connect(&app, &a, &a_key)
        .await
        .expect("the tenant's own key");
}

#[tokio::test]
async fn a_revoked_key_cannot_log_in_and_a_new_key_can() {
    let app = spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "wire-revoke", "tenant_admin").await;
    connect(&app, &slug, &key)
        .await
        .expect("before the revocation");
    let keys = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{id}/api-keys"), None)
            .await,
        200,
    )
    .await;
    let key_id = keys["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "wire")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = app
        .admin(
            Method::DELETE,
            &format!("/v1/tenants/{id}/api-keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert!(refusal(&app, &slug, &key).await.starts_with("28P01"));
    let fresh = mint_key(
        &app,
        &id,
        json!({ "name": "second", "role": "tenant_admin" }),
    )
    .await;
    connect(&app, &slug, &fresh).await.expect("a new key");
}

#[tokio::test]
async fn keys_no_login_role_can_hold_to_their_scope_are_refused_with_what_they_lack() {
    let app = spawn_app().await;
    let (id, slug, admin_key) = tenant_with_key(&app, "wire-scope", "tenant_admin").await;
    let viewer = mint_key(&app, &id, json!({ "name": "viewer", "role": "viewer" })).await;
    let narrow = mint_key(
        &app,
        &id,
        json!({ "name": "agents only", "role": "tenant_admin",
                "permissions": [{ "resource": "agents", "actions": ["read", "write", "delete"], "scope": "tenant" }] }),
    )
    .await;
    let own_calls = mint_key(&app, &id, json!({ "name": "agent", "role": "agent" })).await;
    for key in [&own_calls, &narrow] {
        let refused = refusal(&app, &slug, key).await;
        assert!(
            refused
                .starts_with("28000: this key may not read all of the tenant's agents and calls"),
            "{refused}"
        );
    }
    // A viewer's reads reach every row of what it addresses, as on HTTP:
    // on the whole tenant it logs in as the tenant's reader.
    let whole = connect(&app, &slug, &viewer)
        .await
        .expect("a viewer of the whole tenant");
    whole
        .batch_execute("SELECT count(*) FROM agents")
        .await
        .unwrap();
    // Named to a subtenant, a key is held to that subtenant's rows: a
    // viewer reads them all there, as the subtenant's reader; a key on
    // some tables still may not.
    app.create_subtenant(&id, "wire-scope-sub").await;
    let named = format!("{slug}.wire-scope-sub");
    let refused = refusal(&app, &named, &narrow).await;
    assert!(
        refused.starts_with("28000: this key may not read all of the subtenant's agents and calls"),
        "{refused}"
    );
    let viewing = connect(&app, &named, &viewer)
        .await
        .expect("a viewer of a subtenant");
    // Read-only by default, and without the privilege when that is off.
    let insert =
        "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'no', 'chat', 'v')";
    let write = viewing.batch_execute(insert).await;
    assert_eq!(
        crate::kit::gateway::sqlstate(&write).as_deref(),
        Some("25006")
    );
    let write = viewing
        .batch_execute(&format!("BEGIN READ WRITE; {insert}"))
        .await;
    assert_eq!(
        crate::kit::gateway::sqlstate(&write).as_deref(),
        Some("42501")
    );
    viewing.batch_execute("ROLLBACK").await.unwrap();
    connect(&app, &named, &admin_key)
        .await
        .expect("a whole-tenant key named to its subtenant");
}

#[tokio::test]
async fn a_suspended_tenant_cannot_log_in_and_its_connected_client_is_let_go_at_its_next_transaction(
) {
    let app = spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "wire-suspend", "tenant_admin").await;
    let db = connect(&app, &slug, &key).await.unwrap();
    db.simple_query("SELECT 1").await.unwrap();
    let suspended = call(
        &app,
        Method::POST,
        &format!("/v1/tenants/{id}/suspend"),
        &app.super_admin_token(),
        None,
        None,
    )
    .await;
    assert_eq!(suspended.status(), 200);
    assert_eq!(
        refusal(&app, &slug, &key).await,
        "28000: the tenant is suspended"
    );
    let ended = db.simple_query("SELECT 1").await.unwrap_err();
    let db_error = ended.as_db_error().expect("the gateway's own message");
    assert_eq!(db_error.code().code(), "57P01");
    assert!(
        db_error.message().contains("suspended"),
        "{}",
        db_error.message()
    );
    let resumed = call(
        &app,
        Method::POST,
        &format!("/v1/tenants/{id}/resume"),
        &app.super_admin_token(),
        None,
        None,
    )
    .await;
    assert_eq!(resumed.status(), 200);
    connect(&app, &slug, &key).await.expect("resumed");
}

#[tokio::test]
async fn a_client_that_stalls_in_the_middle_of_its_login_is_told_it_timed_out_as_postgresql_tells_it(
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app_with(|s| s.gateway.login_timeout_secs = 1).await;
    // Before the connection: the gateway's clock starts when it accepts.
    let started = std::time::Instant::now();
    let mut stream =
        tokio::net::TcpStream::connect(("127.0.0.1", app.gateway_port.expect("the gateway")))
            .await
            .unwrap();
    let mut start = bytes::BytesMut::new();
    postgres_protocol::message::frontend::startup_message(
        [("user", "stalling"), ("database", "stalling")].into_iter(),
        &mut start,
    )
    .unwrap();
    stream.write_all(&start).await.unwrap();
    // The gateway asks for SASL; the client never answers.
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the gateway ends the connection")
    .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.contains("SCRAM-SHA-256")
            && text.contains("C57014")
            && text.contains("canceling authentication due to timeout"),
        "{text:?}"
    );
}

#[tokio::test]
async fn a_client_whose_key_is_revoked_is_let_go_at_its_next_transaction() {
    let app = spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "wire-revoked", "tenant_admin").await;
    let client = connect(&app, &slug, &key).await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    let listed = call(
        &app,
        Method::GET,
        &format!("/v1/tenants/{id}/api-keys"),
        &app.super_admin_token(),
        None,
        None,
    )
    .await;
    let listed = ok_json(listed, 200).await;
    let key_id = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "wire")
        .expect("the wire key")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/v1/tenants/{id}/api-keys/{key_id}"),
        &app.super_admin_token(),
        None,
        None,
    )
    .await;
    assert_eq!(revoked.status().as_u16(), 204);
    let refused = client
        .simple_query("SELECT 1")
        .await
        .expect_err("a revoked key's client ran a transaction");
    let refused = refused.as_db_error().expect("the gateway's own message");
    assert_eq!(refused.code().code(), "28000", "{}", refused.message());
    assert!(
        refused.message().contains("revoked"),
        "{}",
        refused.message()
    );
    assert!(client.is_closed() || client.simple_query("SELECT 1").await.is_err());
}
