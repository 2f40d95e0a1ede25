//! Small inputs answered the same way everywhere: a bad id in a path, and a
//! page size out of range on the command line as in the API.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app};
use crate::kit::binary::{command, run};
use crate::kit::{call, id};

#[tokio::test]
async fn a_bad_agent_or_backup_id_in_the_path_answers_400_invalid_path_naming_the_segment() {
    let app = spawn_app().await;
    let t = app.create_tenant("bad-paths", json!({})).await;
    let token = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let r = call(
        &app,
        Method::GET,
        "/v1/agents/not-a-uuid",
        &token,
        None,
        None,
    )
    .await;
    let (status, code, message) = envelope(r).await;
    assert_eq!((status, code.as_str()), (400, "invalid_path"), "{message}");
    assert_eq!(message, "`id` in the path must be a UUID");

    let tid = t["id"].as_str().unwrap();
    let r = app
        .admin(
            Method::GET,
            &format!("/v1/tenants/{tid}/backups/nope"),
            None,
        )
        .await;
    let (status, code, message) = envelope(r).await;
    assert_eq!((status, code.as_str()), (400, "invalid_path"), "{message}");
    assert_eq!(message, "`backup` in the path must be a UUID");
}

#[tokio::test]
async fn the_clis_limit_refuses_what_the_apis_limit_refuses_with_the_same_words() {
    let app = spawn_app().await;
    for limit in ["0", "501"] {
        let (code, _, stderr) = run(command().args(["tenant", "list", "--limit", limit])).await;
        assert_eq!(code, 2, "--limit {limit}: {stderr}");
        assert!(
            stderr.contains("limit must be a whole number from 1 to 500"),
            "--limit {limit}: {stderr}"
        );
        let r = app
            .admin(Method::GET, &format!("/v1/tenants?limit={limit}"), None)
            .await;
        let (status, _, message) = envelope(r).await;
        assert_eq!(status, 400);
        assert!(
            message.contains("limit must be a whole number from 1 to 500"),
            "{message}"
        );
    }
}
