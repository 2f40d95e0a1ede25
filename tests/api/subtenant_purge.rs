//! Purging a subtenant deletes its rows from its root's database, which it
//! shares with its root and siblings.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{spawn_app, TestApp};
use crate::kit::servers::agent_for;
use crate::kit::{call, id, ok_json};

/// Creates an agent and a call on it as `token`; returns the agent's id.
async fn agent_with_call(app: &TestApp, token: &str, name: &str) -> String {
    let agent = agent_for(app, token, name).await;
    add_call(app, token, &agent).await;
    agent
}

async fn add_call(app: &TestApp, token: &str, agent: &str) {
    ok_json(
        call(
            app,
            Method::POST,
            "/v1/calls",
            token,
            None,
            Some(json!({ "agent_id": agent, "status": "completed", "duration": 30 })),
        )
        .await,
        201,
    )
    .await;
}

/// Agents, calls and audit events of each scope, in the root's database.
const ROWS: &str =
    "SELECT s, (SELECT count(*) FROM agents a WHERE a.subtenant_id IS NOT DISTINCT FROM s),
        (SELECT count(*) FROM calls c WHERE c.subtenant_id IS NOT DISTINCT FROM s),
        (SELECT count(*) FROM audit_log l WHERE l.subtenant_id IS NOT DISTINCT FROM s)
   FROM unnest(ARRAY[NULL, $1::uuid, $2::uuid]) AS s";

async fn rows(db: &tokio_postgres::Client, gone: uuid::Uuid, kept: uuid::Uuid) -> Vec<[i64; 3]> {
    db.query(ROWS, &[&gone, &kept])
        .await
        .unwrap()
        .iter()
        .map(|r| [r.get(1), r.get(2), r.get(3)])
        .collect()
}

#[tokio::test]
async fn purging_a_subtenant_deletes_its_agents_calls_and_audit_events_and_keeps_its_root_and_sibling(
) {
    let app = spawn_app().await;
    let root = app.create_tenant("purge-root", json!({})).await;
    let rid = root["id"].as_str().unwrap();
    let gone = app.create_subtenant(rid, "purge-gone").await;
    let kept = app.create_subtenant(rid, "purge-kept").await;
    let root_admin = app.token(Role::TenantAdmin, Some(id(&root)), None);
    let gone_admin = app.token(Role::SubtenantAdmin, Some(id(&root)), Some(id(&gone)));
    let kept_admin = app.token(Role::SubtenantAdmin, Some(id(&root)), Some(id(&kept)));
    agent_with_call(&app, &root_admin, "root's").await;
    let gone_agent = agent_with_call(&app, &gone_admin, "gone's").await;
    agent_with_call(&app, &kept_admin, "kept's").await;
    // A tenant-wide call on the purged subtenant's agent goes with the agent.
    add_call(&app, &root_admin, &gone_agent).await;
    let db = app.server.connect(root["database"].as_str().unwrap()).await;
    let (gone_id, kept_id) = (id(&gone).as_uuid(), id(&kept).as_uuid());
    let before = rows(&db, gone_id, kept_id).await;
    assert_eq!(before[1][..2], [1, 1], "the subtenant's agent and call");
    assert!(before[1][2] >= 2, "its audit events: {before:?}");

    let gid = gone["id"].as_str().unwrap();
    let purge = app.delete_and_purge(gid).await;
    assert_eq!(purge["state"], "succeeded", "{purge}");
    let (status, code, _) = crate::helpers::envelope(
        app.admin(Method::GET, &format!("/v1/tenants/{gid}"), None)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "tenant_not_found"));

    let after = rows(&db, gone_id, kept_id).await;
    assert_eq!(
        after[1],
        [0, 0, 0],
        "the purged subtenant's rows: {after:?}"
    );
    assert_eq!(after[2], before[2], "the sibling's rows");
    assert_eq!(
        after[0],
        [before[0][0], before[0][1] - 1, before[0][2]],
        "the root keeps its rows but the call on the purged agent"
    );
    let listed = ok_json(
        call(&app, Method::GET, "/v1/agents", &root_admin, None, None).await,
        200,
    )
    .await;
    let names: Vec<&str> = listed["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!names.contains(&"gone's"), "{names:?}");
}
