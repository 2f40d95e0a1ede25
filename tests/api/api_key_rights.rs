//! API keys minted by keys: never more rights than the minter's, the minter
//! recorded, expiry, and a tenant's cap of live keys (lifetimes and
//! revocation: `api_key_lifetimes.rs`).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{envelope, spawn_app, spawn_app_with, TestApp};
use crate::kit::{call, ok_json};

async fn mint(
    app: &TestApp,
    tenant: &str,
    token: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/tenants/{tenant}/api-keys")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_never_mints_a_key_with_more_rights_than_its_own_and_its_minter_is_recorded() {
    let app = spawn_app().await;
    let t = app.create_tenant("keyed", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    // A key that may manage keys and read agents, nothing else.
    let narrow = ok_json(
        mint(
            &app,
            tid,
            &app.super_admin_token(),
            json!({
                "name": "key manager",
                "role": "tenant_admin",
                "permissions": [
                    { "resource": "api_keys", "actions": ["admin"], "scope": "tenant" },
                    { "resource": "agents", "actions": ["read"], "scope": "tenant" }
                ]
            }),
        )
        .await,
        201,
    )
    .await;
    let narrow_key = narrow["key"].as_str().unwrap();
    // It cannot mint a full tenant_admin key, nor a viewer with reads it lacks.
    for body in [
        json!({ "name": "escalated", "role": "tenant_admin" }),
        json!({ "name": "wider", "role": "viewer" }),
        json!({ "name": "caller", "role": "agent" }),
        json!({ "name": "call reader", "role": "viewer", "permissions": [
            { "resource": "calls", "actions": ["read"], "scope": "tenant" }
        ] }),
    ] {
        let (status, code, _) = envelope(mint(&app, tid, narrow_key, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "grant_exceeds_caller"),
            "{body}"
        );
    }
    // It can mint what it holds, or less.
    let reader = ok_json(
        mint(
            &app,
            tid,
            narrow_key,
            json!({ "name": "reader", "role": "viewer", "permissions": [
            { "resource": "agents", "actions": ["read"], "scope": "tenant" }
        ] }),
        )
        .await,
        201,
    )
    .await;
    let reader_key = reader["key"].as_str().unwrap();
    ok_json(
        call(&app, Method::GET, "/v1/agents", reader_key, None, None).await,
        200,
    )
    .await;
    let (status, _, _) = envelope(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            reader_key,
            None,
            Some(json!({ "name": "x", "type": "chat" })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    // The minter is on the key and on its audit record.
    let minter = format!("apikey:{}", narrow["id"].as_str().unwrap());
    let row = app
        .catalog_db()
        .await
        .query_one(
            "SELECT k.created_by, a.user_id FROM api_keys k
               JOIN audit_log a ON a.resource = 'api_keys/' || k.id AND a.action = 'api_keys.create'
              WHERE k.id = $1",
            &[&reader["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap()],
        )
        .await
        .unwrap();
    let (created_by, audited): (String, String) = (row.get(0), row.get(1));
    assert_eq!(created_by, audited);
    assert_eq!(created_by, minter);
}

#[tokio::test]
async fn keys_expire_and_a_tenant_has_at_most_its_cap_of_live_keys() {
    let app = spawn_app_with(|s| s.tenants.max_api_keys = 3).await;
    let t = app.create_tenant("capped", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let admin = app.super_admin_token();
    let short = ok_json(
        mint(
            &app,
            tid,
            &admin,
            json!({ "name": "short", "role": "viewer", "ttl_secs": 60 }),
        )
        .await,
        201,
    )
    .await;
    let expires: chrono::DateTime<chrono::Utc> =
        short["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires - chrono::Utc::now();
    assert!((55..=60).contains(&left.num_seconds()), "{left}");
    let key = short["key"].as_str().unwrap();
    ok_json(
        call(&app, Method::GET, "/v1/agents", key, None, None).await,
        200,
    )
    .await;
    // Age it past its expiry rather than wait.
    app.catalog_db()
        .await
        .execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
            &[&short["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
    // The key was verified once and is kept in memory: the catalog's change
    // notice makes the service forget it, within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    // Until the notice arrives the cached key still answers 200, which has
    // no error envelope to read.
    let (status, code) = loop {
        let response = call(&app, Method::GET, "/v1/agents", key, None, None).await;
        if response.status() != 200 {
            let (status, code, _) = envelope(response).await;
            break (status, code);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the expired key still answered 200 after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!((status, code.as_str()), (401, "token_expired"));
    // Below the spec's minimum, the request is refused as invalid.
    let (status, _, _) = envelope(
        mint(
            &app,
            tid,
            &admin,
            json!({ "name": "x", "role": "viewer", "ttl_secs": 59 }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    // The cap counts live keys: the expired one does not.
    let mut ids = Vec::new();
    for i in 0..3 {
        let k = ok_json(
            mint(
                &app,
                tid,
                &admin,
                json!({ "name": format!("k{i}"), "role": "viewer" }),
            )
            .await,
            201,
        )
        .await;
        ids.push(k["id"].as_str().unwrap().to_string());
    }
    let (status, code, _) = envelope(
        mint(
            &app,
            tid,
            &admin,
            json!({ "name": "one too many", "role": "viewer" }),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "api_key_limit"));
    // Revoking one makes room.
    let revoked = app
        .admin(
            Method::DELETE,
            &format!("/v1/tenants/{tid}/api-keys/{}", ids[0]),
            None,
        )
        .await;
    assert!(revoked.status().is_success());
    ok_json(
        mint(&app, tid, &admin, json!({ "name": "k3", "role": "viewer" })).await,
        201,
    )
    .await;
}
