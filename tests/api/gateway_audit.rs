//! The audit log on the wire: a SQL session reads it only where its key
//! may read it over HTTP. A writing session's role reads it, so a key that
//! may write but not read the audit log is refused; a read-only session
//! sees no entry (tenant migration V4), and is not served by a database
//! that would show it one.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::kit::gateway::{
    connect, mint_key, read_only_key, refusal, tenant_database, tenant_with_key,
};

const V4_DOWN: &str =
    include_str!("../../tenant_template/migrations/V4__audit_log_hidden_from_readers.down.sql");

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn read_only_sql_sessions_see_no_audit_entry_whatever_they_set_and_writers_need_the_audit_right(
) {
    let app = spawn_app().await;
    let (id, slug, admin_key) = tenant_with_key(&app, "wire-audit", "tenant_admin").await;
    let sub = app.create_subtenant(&id, "wire-audit-sub").await;
    let sub_id = sub["id"].as_str().unwrap();
    let admin = app.server.connect(&tenant_database(&app, &id).await).await;
    admin
        .batch_execute(&format!(
            "INSERT INTO audit_log (tenant_id, subtenant_id, user_id, action, resource, result)
             VALUES ('{id}', NULL, 'u', 'agent.create', 'agents', 'success'),
                    ('{id}', '{sub_id}', 'u', 'agent.create', 'agents', 'success')"
        ))
        .await
        .unwrap();
    let all = count(&admin, "SELECT count(*) FROM audit_log").await;
    let subs = count(
        &admin,
        &format!("SELECT count(*) FROM audit_log WHERE subtenant_id = '{sub_id}'"),
    )
    .await;
    assert!(all >= 2 && subs >= 1, "{all} {subs}");

    // Keys that may read the audit log read it on the wire, held to their rows.
    let writer = connect(&app, &slug, &admin_key).await.unwrap();
    assert_eq!(count(&writer, "SELECT count(*) FROM audit_log").await, all);
    let named = format!("{slug}.wire-audit-sub");
    let sub_writer = connect(&app, &named, &admin_key).await.unwrap();
    assert_eq!(
        count(&sub_writer, "SELECT count(*) FROM audit_log").await,
        subs
    );

    // Read-only keys read agents and calls, never an audit entry.
    let viewer = mint_key(&app, &id, json!({ "name": "viewer", "role": "viewer" })).await;
    let reports = mint_key(&app, &id, read_only_key()).await;
    let tries = [
        "RESET ALL",
        "SET ROLE ai_care_tenant_reader",
        "RESET ROLE",
        "SET app.subtenant_id = ''",
        "SELECT set_config('app.user_id', 'u', false)",
        "DISCARD ALL",
    ];
    for (user, key) in [(&named, &viewer), (&slug, &reports)] {
        let reader = connect(&app, user, key).await.unwrap();
        count(&reader, "SELECT count(*) FROM agents").await;
        assert_eq!(count(&reader, "SELECT count(*) FROM audit_log").await, 0);
        for attempt in tries {
            let _ = reader.batch_execute(attempt).await;
            let seen = count(&reader, "SELECT count(*) FROM audit_log").await;
            assert_eq!(seen, 0, "{user} after {attempt}");
        }
    }

    // A key that may write agents and calls but not read the audit log
    // gets no session, which would read it.
    let no_audit = mint_key(
        &app,
        &id,
        json!({ "name": "writer", "role": "tenant_admin", "permissions": [
            { "resource": "agents", "actions": ["read", "write", "delete"], "scope": "tenant" },
            { "resource": "calls", "actions": ["read", "write", "delete"], "scope": "tenant" },
        ] }),
    )
    .await;
    let refused = refusal(&app, &slug, &no_audit).await;
    assert!(
        refused.starts_with("28000: this key may not read the tenant's audit log"),
        "{refused}"
    );

    // A database that would show the audit log (V4 reverted) serves no
    // read-only session. The revert ends the reader's sessions, and with
    // them its client; the next client (whose login finds the server's
    // parameters known) is told why at its first transaction.
    let reader = connect(&app, &slug, &reports).await.unwrap();
    count(&reader, "SELECT count(*) FROM agents").await;
    admin.batch_execute(V4_DOWN).await.unwrap();
    let ended = reader.simple_query("SELECT count(*) FROM audit_log").await;
    assert!(ended.is_err(), "a reader's session outlived the revert");
    let next = connect(&app, &slug, &reports).await.unwrap();
    let refused = next
        .simple_query("SELECT count(*) FROM audit_log")
        .await
        .unwrap_err();
    let refused = refused.as_db_error().expect("the gateway's own message");
    assert_eq!(
        (refused.code().code(), refused.message()),
        ("28000", "the tenant's database does not hide its audit log from read-only sessions yet: it needs tenant migration V4")
    );
    // The writer's session goes on, and reads every entry.
    let now = count(&admin, "SELECT count(*) FROM audit_log").await;
    assert_eq!(count(&writer, "SELECT count(*) FROM audit_log").await, now);
}

#[tokio::test]
async fn a_read_only_key_cannot_log_in_to_a_tenant_database_that_would_show_it_the_audit_log() {
    let app = spawn_app().await;
    let (id, slug, _) = tenant_with_key(&app, "wire-audit-old", "tenant_admin").await;
    let admin = app.server.connect(&tenant_database(&app, &id).await).await;
    admin.batch_execute(V4_DOWN).await.unwrap();
    let reports = mint_key(&app, &id, read_only_key()).await;
    assert_eq!(
        refusal(&app, &slug, &reports).await,
        "28000: the tenant's database does not hide its audit log from read-only sessions yet: it needs tenant migration V4"
    );
}
