//! Creating tenants: a database cloned from the template, a role only it can
//! use, idempotent retries, and concurrency.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{envelope, spawn_app};
use crate::kit::tenant_db::{http_login, role_password};

#[tokio::test]
async fn creating_a_tenant_clones_a_migrated_database_that_only_its_own_role_can_open() {
    let app = spawn_app().await;
    let a = app.create_tenant("acme", json!({})).await;
    let b = app.create_tenant("globex", json!({})).await;
    let (a_id, a_db) = (a["id"].as_str().unwrap(), a["database"].as_str().unwrap());
    let (b_id, b_db) = (b["id"].as_str().unwrap(), b["database"].as_str().unwrap());
    assert_eq!(a["status"], "active");
    assert_eq!(a_db, format!("ai_care_tenant_{}", a_id.replace('-', "")));
    assert_eq!(a["schema_version"], crate::kit::LATEST_TENANT_VERSION);

    // The schema is there, row-level security on.
    let admin = app.server.connect(a_db).await;
    let tables: Vec<String> = admin
        .query(
            "SELECT relname::text FROM pg_class WHERE relname IN ('agents', 'calls', 'audit_log') AND relrowsecurity ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["agents", "audit_log", "calls"]);

    // Its own login connects and can use the tables.
    let a_pw = role_password(&app, a_id).await;
    let own = app
        .server
        .connect_as(a_db, &http_login(a_db), &a_pw)
        .await
        .expect("own role connects");
    own.execute("SELECT count(*) FROM agents", &[])
        .await
        .unwrap();
    // The tenant role is a group: with its tenant's password, it cannot
    // log in (a gateway client may set its password: see gateway_groups).
    let Err(err) = app.server.connect_as(a_db, a_db, &a_pw).await else {
        panic!("the tenant role logged in");
    };
    assert!(
        format!("{err:?}").contains("is not permitted to log in"),
        "{err:?}"
    );
    // Another tenant's login is refused by PostgreSQL itself.
    let b_pw = role_password(&app, b_id).await;
    let Err(err) = app.server.connect_as(a_db, &http_login(b_db), &b_pw).await else {
        panic!("another tenant's role connected");
    };
    assert!(
        err.to_string().contains("permission denied for database")
            || format!("{err:?}").contains("42501"),
        "{err:?}"
    );
    // Nothing keeps a session open on the template: with template migrations
    // held off by the lock, PostgreSQL can clone it (it refuses while anyone
    // is connected to it).
    let admin = app.server.connect("postgres").await;
    let lock = tenant_plane::provisioner::TEMPLATE_LOCK;
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&lock])
        .await
        .unwrap();
    let probe = format!("probe_{}", uuid::Uuid::new_v4().simple());
    let cloned = admin
        .batch_execute(&format!(
            "CREATE DATABASE {probe} TEMPLATE ai_care_tenant_template"
        ))
        .await;
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&lock])
        .await
        .unwrap();
    assert!(cloned.is_ok(), "the template was busy: {cloned:?}");
    admin
        .batch_execute(&format!("DROP DATABASE {probe}"))
        .await
        .unwrap();
    // No tenant role reaches the template.
    assert!(app
        .server
        .connect_as("ai_care_tenant_template", &http_login(a_db), &a_pw)
        .await
        .is_err());
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_first_tenant_and_creates_no_second_database(
) {
    let app = spawn_app().await;
    let body = json!({ "name": "Initech", "slug": "initech" });
    let send = |body: serde_json::Value| {
        app.client
            .post(app.url("/v1/tenants"))
            .bearer_auth(app.super_admin_token())
            .header("Idempotency-Key", "create-initech-1")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let retry = send(body.clone()).await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers().get("idempotent-replayed").unwrap(), "true");
    let retry: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(first["id"], retry["id"]);
    let count = app.catalog_count("SELECT count(*) FROM tenants").await;
    assert_eq!(count, 1);
    // The same key with another body is refused.
    let other = send(json!({ "name": "Initech 2", "slug": "initech-2" }))
        .await
        .unwrap();
    let (status, code, _) = envelope(other).await;
    assert_eq!((status, code.as_str()), (409, "idempotency_key_reused"));
}

#[tokio::test]
async fn a_duplicate_slug_gets_409() {
    let app = spawn_app().await;
    app.create_tenant("umbrella", json!({})).await;
    let again = app
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Other", "slug": "umbrella" })),
        )
        .await;
    let (status, code, _) = envelope(again).await;
    assert_eq!((status, code.as_str()), (409, "slug_taken"));
}

#[tokio::test]
async fn twenty_concurrent_creates_all_succeed_with_twenty_distinct_databases() {
    let app = spawn_app().await;
    let creates = (0..20).map(|i| {
        app.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": format!("Burst {i}"), "slug": format!("burst-{i}") })),
        )
    });
    let responses = futures_util::future::join_all(creates).await;
    let mut databases = HashSet::new();
    for response in responses {
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], "active");
        databases.insert(body["database"].as_str().unwrap().to_string());
    }
    assert_eq!(databases.len(), 20);
    let admin = app.server.connect("postgres").await;
    let names: Vec<String> = databases.into_iter().collect();
    let existing: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = ANY($1)",
            &[&names],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(existing, 20);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_in_the_envelope_and_creates_nothing() {
    let app = spawn_app().await;
    let long = "x".repeat(10_000);
    let cases = vec![
        json!({ "name": "Evil", "slug": "x'; DROP DATABASE postgres; --" }),
        json!({ "name": "Evil", "slug": "ai_care_tenant_template" }),
        json!({ "name": "Evil", "slug": "nul\u{0}byte" }),
        json!({ "name": "Evil\u{0}", "slug": "nul-name" }),
        json!({ "name": long, "slug": "long-name" }),
        json!({ "name": "Long", "slug": long }),
        json!({ "name": 42, "slug": "wrong-type" }),
        json!({ "name": "Tier", "slug": "bad-tier", "tier": "platinum" }),
        json!({ "name": "Extra", "slug": "extra-field", "database": "postgres" }),
        json!({ "name": "Settings", "slug": "bad-settings", "settings": { "colour": "red" } }),
        json!({ "name": "Settings", "slug": "bad-limit", "settings": { "features": { "maxAgents": "ten" } } }),
        json!({ "name": "Settings", "slug": "bad-css", "settings": { "branding": { "customCSS": long.repeat(3) } } }),
        json!([1, 2, 3]),
        json!("just a string"),
    ];
    for body in cases {
        let response = app
            .admin(Method::POST, "/v1/tenants", Some(body.clone()))
            .await;
        let (status, _, _) = envelope(response).await;
        assert!((400..500).contains(&status), "{status} for {body}");
    }
    let unknown_parent = app
        .admin(
            Method::POST,
            &format!("/v1/tenants/{}/subtenants", uuid::Uuid::now_v7()),
            Some(json!({ "name": "Orphan", "slug": "orphan" })),
        )
        .await;
    let (status, code, _) = envelope(unknown_parent).await;
    assert_eq!((status, code.as_str()), (404, "tenant_not_found"));
    for bad_id in ["not-a-uuid", "1%20OR%201=1", "%00"] {
        let (status, code, _) = envelope(
            app.admin(Method::GET, &format!("/v1/tenants/{bad_id}"), None)
                .await,
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_tenant_id"),
            "{bad_id}"
        );
    }
    let count = app.catalog_count("SELECT count(*) FROM tenants").await;
    assert_eq!(count, 0, "no tenant, so no database, was created");
}

#[tokio::test]
async fn the_tenant_list_pages_with_a_cursor_and_filters_by_status_and_parent() {
    let app = spawn_app().await;
    let root = app.create_tenant("list-root", json!({})).await;
    for i in 0..3 {
        app.create_tenant(&format!("list-{i}"), json!({})).await;
    }
    let root_id = root["id"].as_str().unwrap();
    let sub = app
        .admin(
            Method::POST,
            &format!("/v1/tenants/{root_id}/subtenants"),
            Some(json!({ "name": "Sub", "slug": "list-sub" })),
        )
        .await;
    assert_eq!(sub.status(), 201);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants?limit=2&cursor={c}"),
            None => "/v1/tenants?limit=2".to_string(),
        };
        let page: serde_json::Value = app
            .admin(Method::GET, &path, None)
            .await
            .json()
            .await
            .unwrap();
        for t in page["tenants"].as_array().unwrap() {
            seen.push(t["slug"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let children: serde_json::Value = app
        .admin(
            Method::GET,
            &format!("/v1/tenants?parent_id={root_id}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(children["tenants"].as_array().unwrap().len(), 1);
    let (status, code, _) = envelope(
        app.admin(Method::GET, "/v1/tenants?status=exploded", None)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_query"));
}
