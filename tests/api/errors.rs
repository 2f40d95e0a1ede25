//! Bad requests get a clear 4xx in the one envelope, never a 500.

use crate::helpers::{envelope, spawn_app, TestApp};

async fn catalog_server_id(app: &TestApp) -> String {
    let body: serde_json::Value = app
        .get("/v1/servers", Some(&app.super_admin_token()))
        .await
        .json()
        .await
        .unwrap();
    body["servers"][0]["id"].as_str().unwrap().to_string()
}

async fn patch_server(
    app: &TestApp,
    id: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/v1/servers/{id}")))
        .bearer_auth(app.super_admin_token())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unknown_route_gets_404_in_the_envelope() {
    let app = spawn_app().await;
    for path in ["/nope", "/v1/nope", "/v1/servers/x/y/z", "/%00"] {
        let (status, code, _) = envelope(app.get(path, None).await).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{path}");
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_known_route_gets_405_in_the_envelope() {
    let app = spawn_app().await;
    let response = app.client.delete(app.url("/healthz")).send().await.unwrap();
    let (status, code, _) = envelope(response).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn an_oversized_body_gets_413_in_the_envelope_and_changes_nothing() {
    let app = spawn_app().await;
    let id = catalog_server_id(&app).await;
    // The test app's limit is 64 KiB.
    let big = format!(r#"{{"capacity": 5, "pad": "{}"}}"#, "x".repeat(100 * 1024));
    let response = patch_server(&app, &id, "application/json", big.into_bytes()).await;
    let (status, code, _) = envelope(response).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    let servers: serde_json::Value = app
        .get("/v1/servers", Some(&app.super_admin_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(servers["servers"][0]["capacity"], 1000);
}

#[tokio::test]
async fn a_malformed_body_gets_400_and_a_wrongly_typed_one_422_in_the_envelope() {
    let app = spawn_app().await;
    let id = catalog_server_id(&app).await;
    let cases: Vec<(&str, &[u8], u16, &str)> = vec![
        ("application/json", b"{not json", 400, "malformed_json"),
        ("application/json", b"", 400, "malformed_json"),
        ("application/json", b"\xff\xfe\x00", 400, "malformed_json"),
        (
            "application/json",
            br#"{"capacity": "many"}"#,
            422,
            "invalid_body",
        ),
        (
            "application/json",
            br#"{"capacity": -1}"#,
            422,
            "invalid_body",
        ),
        (
            "application/json",
            br#"{"state": "exploded"}"#,
            422,
            "invalid_body",
        ),
        (
            "application/json",
            br#"{"colour": "red"}"#,
            422,
            "invalid_body",
        ),
        (
            "application/json",
            br#"{"capacity": 0}"#,
            422,
            "invalid_body",
        ),
        // A body must be an object: serde alone would take an array by position.
        ("application/json", br#"["draining"]"#, 422, "invalid_body"),
        ("application/json", br#"{"capacity": 3186.0}"#, 200, ""),
        (
            "text/plain",
            br#"{"capacity": 5}"#,
            415,
            "unsupported_media_type",
        ),
    ];
    for (content_type, body, want_status, want_code) in cases {
        let response = patch_server(&app, &id, content_type, body.to_vec()).await;
        if want_status == 200 {
            assert_eq!(
                response.status(),
                200,
                "{:?}",
                String::from_utf8_lossy(body)
            );
            continue;
        }
        let (status, code, _) = envelope(response).await;
        assert_eq!(
            (status, code.as_str()),
            (want_status, want_code),
            "{content_type} {:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_gets_400_and_an_unknown_one_404() {
    let app = spawn_app().await;
    let bad = patch_server(&app, "'%20OR%201=1", "application/json", b"{}".to_vec()).await;
    let (status, code, _) = envelope(bad).await;
    assert_eq!((status, code.as_str()), (400, "invalid_path"));
    let missing = patch_server(
        &app,
        &uuid::Uuid::new_v4().to_string(),
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    let (status, code, _) = envelope(missing).await;
    assert_eq!((status, code.as_str()), (404, "server_not_found"));
}

#[tokio::test]
async fn a_valid_server_patch_marks_the_server_draining() {
    let app = spawn_app().await;
    let id = catalog_server_id(&app).await;
    let response = patch_server(
        &app,
        &id,
        "application/json",
        br#"{"state":"draining","connection_budget":40}"#.to_vec(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let server: serde_json::Value = response.json().await.unwrap();
    assert_eq!(server["state"], "draining");
    assert_eq!(server["connection_budget"], 40);
    assert_eq!(server["capacity"], 1000);
}
