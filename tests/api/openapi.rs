//! `/openapi.json` against the routes the server really serves: every
//! documented operation is routed, every method it does not document is
//! refused with 405, and every route registered in the source is documented.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{envelope, spawn_app};

/// The console's pages and scripts: files for a browser, not the JSON API
/// (`console_session.rs` tests them). Its session routes are in the spec.
const CONSOLE_FILES: [&str; 3] = ["/console", "/console/", "/console/{file}"];

/// Every path registered under `src/api`, as served, but the console's
/// files: a `resource("…")` literal, or the `path = "…"` of a handler's
/// `#[utoipa::path]` attribute, which `api::routes` registers.
fn registered_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/api"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for piece in source.split("resource(\"").skip(1) {
                let path = piece.split('"').next().unwrap();
                if !CONSOLE_FILES.contains(&path) {
                    paths.insert(path.to_string());
                }
            }
            for attribute in source.split("#[utoipa::path(").skip(1) {
                let path = attribute.split("path = \"").nth(1).unwrap();
                paths.insert(path.split('"').next().unwrap().to_string());
            }
        }
    }
    paths
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes_the_server_serves() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["components"]["schemas"]["ErrorEnvelope"].is_object(),
        "the envelope is described"
    );
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        documented,
        registered_paths(),
        "documented paths vs registered routes"
    );

    let all = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ];
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    uuid::Uuid::now_v7().to_string()
                } else {
                    s.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in &all {
            let documented = item.get(method.as_str().to_ascii_lowercase()).is_some();
            let r = app
                .client
                .request(method.clone(), app.url(&concrete))
                .bearer_auth(app.super_admin_token())
                .header("x-tenant-id", uuid::Uuid::now_v7().to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            if documented {
                operations += 1;
                assert_ne!(status, 405, "{method} {path} is documented but not served");
                if status == 404 {
                    let (_, code, _) = envelope(r).await;
                    assert_ne!(
                        code, "not_found",
                        "{method} {path} is documented but not routed"
                    );
                }
                // Every error an operation declares has the envelope and names its codes.
                let op = &item[method.as_str().to_ascii_lowercase()];
                assert!(
                    op["operationId"].is_string(),
                    "{method} {path} has no operationId"
                );
                for (status, response) in op["responses"].as_object().unwrap() {
                    if status.starts_with(['4', '5']) {
                        assert!(
                            response.to_string().contains("ErrorEnvelope"),
                            "{method} {path} {status} has no envelope"
                        );
                        assert!(
                            response["x-error-codes"]
                                .as_array()
                                .is_some_and(|c| !c.is_empty()),
                            "{method} {path} {status} names no codes"
                        );
                        for code in response["x-error-codes"].as_array().unwrap() {
                            let code = code.as_str().unwrap_or_default();
                            assert!(
                                tenant_plane::api::ErrorCode::parse(code).is_some(),
                                "{method} {path} {status}: {code} is not an ErrorCode"
                            );
                        }
                    }
                }
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented");
                // RFC 9110: a 405 lists the methods the resource has.
                let allow: BTreeSet<String> = r
                    .headers()
                    .get("allow")
                    .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"))
                    .to_str()
                    .unwrap()
                    .split(',')
                    .map(|m| m.trim().to_string())
                    .collect();
                let declared: BTreeSet<String> = ["get", "post", "patch", "delete", "put"]
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_uppercase())
                    .collect();
                assert_eq!(allow, declared, "{method} {path}: Allow vs the spec");
                let (_, code, _) = envelope(r).await;
                assert_eq!(code, "method_not_allowed");
            }
        }
    }
    assert!(operations >= 38, "{operations} operations documented");
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "operation ids are unique: {ids:?}");
}
