//! How long API keys live: never longer than the credential that mints
//! them, revoked with the key that minted them, pruned once dead, and
//! listed a page at a time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::{Claims, Role};

use crate::helpers::{envelope, sign, spawn_app, TestApp};
use crate::kit::{call, id, ok_json};

async fn mint(app: &TestApp, tenant: &str, token: &str, body: Value) -> Value {
    ok_json(
        call(
            app,
            Method::POST,
            &format!("/v1/tenants/{tenant}/api-keys"),
            token,
            None,
            Some(body),
        )
        .await,
        201,
    )
    .await
}

async fn list(app: &TestApp, tenant: &str, query: &str) -> Value {
    ok_json(
        app.admin(
            Method::GET,
            &format!("/v1/tenants/{tenant}/api-keys{query}"),
            None,
        )
        .await,
        200,
    )
    .await
}

fn expiry(key: &Value) -> Option<DateTime<Utc>> {
    key["expires_at"].as_str().map(|at| at.parse().unwrap())
}

#[tokio::test]
async fn a_key_minted_by_a_one_hour_token_ends_with_the_token_even_when_it_asks_for_no_end_or_a_later_one(
) {
    let app = spawn_app().await;
    let t = app.create_tenant("short-lived-maker", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let hour = Claims::new(
        "one-hour",
        Role::TenantAdmin,
        Some(id(&t)),
        None,
        Duration::from_secs(3600),
    );
    let token_end = DateTime::from_timestamp(hour.exp, 0).unwrap();
    let token = sign(hour);

    let forever = mint(
        &app,
        tid,
        &token,
        json!({ "name": "forever", "role": "viewer" }),
    )
    .await;
    assert_eq!(expiry(&forever), Some(token_end), "{forever}");
    assert_eq!(forever["expiry_capped"], true);

    let ten_years = mint(
        &app,
        tid,
        &token,
        json!({ "name": "ten years", "role": "viewer", "ttl_secs": 315_360_000 }),
    )
    .await;
    assert_eq!(expiry(&ten_years), Some(token_end), "{ten_years}");
    assert_eq!(ten_years["expiry_capped"], true);

    // A shorter life is kept as asked.
    let minute = mint(
        &app,
        tid,
        &token,
        json!({ "name": "a minute", "role": "viewer", "ttl_secs": 60 }),
    )
    .await;
    let end = expiry(&minute).unwrap();
    assert!(end < token_end && end > Utc::now(), "{minute}");
    assert_eq!(minute["expiry_capped"], false);

    // The catalog holds the capped expiry, so the key stops with the token.
    let stored: Option<DateTime<Utc>> = app
        .catalog_db()
        .await
        .query_one(
            "SELECT expires_at FROM api_keys WHERE id = $1::text::uuid",
            &[&forever["id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, Some(token_end));
}

#[tokio::test]
async fn revoking_a_key_revokes_the_keys_it_minted_and_theirs_and_leaves_other_keys_working() {
    let app = spawn_app().await;
    let t = app.create_tenant("key-lineage", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let admin = app.super_admin_token();
    let parent = mint(
        &app,
        tid,
        &admin,
        json!({ "name": "parent", "role": "tenant_admin" }),
    )
    .await;
    let parent_key = parent["key"].as_str().unwrap();
    let child = mint(
        &app,
        tid,
        parent_key,
        json!({ "name": "child", "role": "tenant_admin" }),
    )
    .await;
    assert_eq!(child["minted_by"], parent["id"], "{child}");
    let grandchild = mint(
        &app,
        tid,
        child["key"].as_str().unwrap(),
        json!({ "name": "grandchild", "role": "viewer" }),
    )
    .await;
    let sibling = mint(
        &app,
        tid,
        &admin,
        json!({ "name": "sibling", "role": "viewer" }),
    )
    .await;

    let revoked = app
        .admin(
            Method::DELETE,
            &format!(
                "/v1/tenants/{tid}/api-keys/{}",
                parent["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);

    for gone in [&parent, &child, &grandchild] {
        let (status, code, _) = envelope(
            call(
                &app,
                Method::GET,
                "/v1/agents",
                gone["key"].as_str().unwrap(),
                None,
                None,
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (401, "invalid_token"),
            "{}",
            gone["name"]
        );
    }
    ok_json(
        call(
            &app,
            Method::GET,
            "/v1/agents",
            sibling["key"].as_str().unwrap(),
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    let listed = list(&app, tid, "").await;
    for key in listed["api_keys"].as_array().unwrap() {
        let dead = key["revoked_at"].is_string();
        assert_eq!(dead, key["name"] != "sibling", "{key}");
    }
    // The grandchild names its maker in the list.
    let grand = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "grandchild")
        .unwrap();
    assert_eq!(grand["minted_by"], child["id"]);
}

#[tokio::test]
async fn the_retention_pass_prunes_keys_revoked_or_expired_longer_ago_than_the_audit_retention() {
    let app = spawn_app().await;
    let t = app.create_tenant("key-pruning", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let admin = app.super_admin_token();
    let mut ids = Vec::new();
    for name in [
        "revoked long ago",
        "expired long ago",
        "revoked lately",
        "live",
    ] {
        let key = mint(&app, tid, &admin, json!({ "name": name, "role": "viewer" })).await;
        ids.push(key["id"].as_str().unwrap().to_string());
    }
    let catalog = app.catalog_db().await;
    catalog
        .batch_execute(&format!(
            "UPDATE api_keys SET revoked_at = now() - interval '401 days' WHERE id = '{}';
             UPDATE api_keys SET expires_at = now() - interval '401 days' WHERE id = '{}';
             UPDATE api_keys SET revoked_at = now() - interval '1 day' WHERE id = '{}';",
            ids[0], ids[1], ids[2]
        ))
        .await
        .unwrap();
    let report = app.state().await.reconciler().run_once().await.unwrap();
    assert_eq!(report.pruned.api_keys, 2, "{:?}", report.pruned);
    let left: Vec<String> = list(&app, tid, "").await["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["revoked lately", "live"]);
}

#[tokio::test]
async fn the_key_list_pages_oldest_first_with_limit_and_cursor_like_the_other_lists() {
    let app = spawn_app().await;
    let t = app.create_tenant("key-pages", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let admin = app.super_admin_token();
    for i in 0..5 {
        mint(
            &app,
            tid,
            &admin,
            json!({ "name": format!("k{i}"), "role": "viewer" }),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut query = "?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = list(&app, tid, &query).await;
        pages += 1;
        assert!(pages <= 3, "the pages never end: {page}");
        let keys = page["api_keys"].as_array().unwrap();
        assert!(keys.len() <= 2, "{page}");
        names.extend(keys.iter().map(|k| k["name"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["k0", "k1", "k2", "k3", "k4"]);
    // Without a limit, the default page holds them all, and says it is the last.
    let all = list(&app, tid, "").await;
    assert_eq!(all["api_keys"].as_array().unwrap().len(), 5);
    assert!(all["next_cursor"].is_null(), "{all}");
    // A limit outside 1..=500 is refused, as everywhere.
    for bad in ["0", "501"] {
        let (status, code, _) = envelope(
            app.admin(
                Method::GET,
                &format!("/v1/tenants/{tid}/api-keys?limit={bad}"),
                None,
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_query"),
            "limit={bad}"
        );
    }
}
