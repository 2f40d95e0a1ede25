//! The operations resource: long actions answer 202 with `Location`, the
//! operation shows state, progress, owner, error and result, listings
//! filter and page, and a cancel is refused where nothing can stop.
//! Operations across processes (resumed, cancelled) are in
//! `operations_resume.rs`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{envelope, spawn_app};
use crate::kit::ok_json;

#[tokio::test]
async fn a_create_names_the_tenant_in_location_and_its_operation_in_the_body() {
    let app = spawn_app().await;
    let response = app
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Located", "slug": "located" })),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let t: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/tenants/{}", t["id"].as_str().unwrap())
    );
    let op_id = t["operation_id"].as_str().expect("an operation_id");
    let op = ok_json(
        app.admin(Method::GET, &format!("/v1/operations/{op_id}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(op["kind"], "create_tenant");
    assert_eq!(op["state"], "succeeded");
    assert_eq!(op["tenant_id"], t["id"]);
    assert_eq!(op["result"], location);
    assert!(op["finished_at"].is_string(), "{op}");
    assert!(op["owner"].is_string(), "the instance that ran it: {op}");
    assert!(op["error"].is_null(), "{op}");
    // A plain read carries no operation id.
    let read = ok_json(app.admin(Method::GET, &location, None).await, 200).await;
    assert!(read.get("operation_id").is_none(), "{read}");
}

#[tokio::test]
async fn operations_are_listed_newest_first_filtered_by_tenant_kind_and_state_and_paged() {
    let app = spawn_app().await;
    let a = app.create_tenant("listed-a", json!({})).await;
    let b = app.create_tenant("listed-b", json!({})).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{a_id}/suspend"), None)
            .await,
        200,
    )
    .await;
    let of_a = ok_json(
        app.admin(Method::GET, &format!("/v1/operations?tenant={a_id}"), None)
            .await,
        200,
    )
    .await;
    let kinds: Vec<&str> = of_a["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["suspend", "create_tenant"], "newest first: {of_a}");
    let creates = ok_json(
        app.admin(
            Method::GET,
            "/v1/operations?kind=create_tenant&state=succeeded",
            None,
        )
        .await,
        200,
    )
    .await;
    let tenants: Vec<&str> = creates["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, [b_id, a_id]);
    let none_running = ok_json(
        app.admin(Method::GET, "/v1/operations?state=running", None)
            .await,
        200,
    )
    .await;
    assert_eq!(none_running["operations"], json!([]));
    // One per page: three pages, then no cursor.
    let mut seen = Vec::new();
    let mut path = "/v1/operations?limit=1".to_string();
    loop {
        let page = ok_json(app.admin(Method::GET, &path, None).await, 200).await;
        let ops = page["operations"].as_array().unwrap();
        assert!(ops.len() <= 1);
        seen.extend(ops.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/operations?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    let (status, code, _) = envelope(
        app.admin(Method::GET, "/v1/operations?kind=reboot", None)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_query"));
}

#[tokio::test]
async fn a_cancel_is_refused_for_a_finished_operation_and_unknown_for_a_missing_one() {
    let app = spawn_app().await;
    let t = app.create_tenant("uncancellable", json!({})).await;
    let op = t["operation_id"].as_str().unwrap();
    let (status, code, message) = envelope(
        app.admin(Method::POST, &format!("/v1/operations/{op}/cancel"), None)
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (409, "not_cancellable"),
        "{message}"
    );
    let missing = uuid::Uuid::now_v7();
    let (status, code, _) = envelope(
        app.admin(
            Method::POST,
            &format!("/v1/operations/{missing}/cancel"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "operation_not_found"));
    let (status, code, _) = envelope(
        app.admin(Method::GET, &format!("/v1/operations/{missing}"), None)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "operation_not_found"));
    // Only an operator follows operations.
    let admin = app.token(
        tenant_plane::auth::Role::TenantAdmin,
        Some(t["id"].as_str().unwrap().parse().unwrap()),
        None,
    );
    let response = app
        .client
        .get(app.url(&format!("/v1/operations/{op}")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}
