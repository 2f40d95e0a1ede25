//! The audit log on the wire, for writers: it is the service's record, so a
//! SQL session adds no entry, whatever it sets or becomes. Writers log in as
//! the tenant's writer login or a subtenant's login, whose names tenant
//! migration V5 keeps from the audit log; a database without V5 serves no
//! writing session. The service's own HTTP writes record as before.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::kit::gateway::{
    connect, refused_before_any_sql, sqlstate, tenant_database, tenant_with_key,
};
use crate::kit::{call, ok_json};

const V5_DOWN: &str = include_str!(
    "../../tenant_template/migrations/V5__audit_log_written_by_the_service_alone.down.sql"
);

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

/// An audit entry as a forger would write it, claiming the subtenant `sub`.
fn forged(tenant: &str, sub: &str) -> String {
    format!(
        "INSERT INTO audit_log (tenant_id, subtenant_id, user_id, action, resource, result)
         VALUES ('{tenant}', {sub}, 'someone-else', 'agent.delete', 'agents', 'success')"
    )
}

#[tokio::test]
async fn sql_sessions_cannot_add_audit_entries_whatever_they_set_while_the_services_writes_still_record_them(
) {
    let app = spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "wire-forge", "tenant_admin").await;
    let sub = app.create_subtenant(&id, "wire-forge-sub").await;
    let sub_id = sub["id"].as_str().unwrap();
    let database = tenant_database(&app, &id).await;
    let admin = app.server.connect(&database).await;
    let entries = || count(&admin, "SELECT count(*) FROM audit_log");
    let before = entries().await;

    let writer = connect(&app, &slug, &key).await.unwrap();
    let who: String = writer
        .query_one("SELECT session_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, format!("{database}_wire"));
    // The writer writes agents, and reads the audit log (its key may).
    writer
        .batch_execute(
            "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'w', 'chat', 'wire')",
        )
        .await
        .unwrap();
    assert_eq!(
        count(&writer, "SELECT count(*) FROM audit_log").await,
        before
    );

    let named = format!("{slug}.wire-forge-sub");
    let sub_writer = connect(&app, &named, &key).await.unwrap();
    let attempts = [
        "SELECT 1",
        "SET ROLE NONE",
        &format!("SET ROLE \"{database}\""),
        "SET SESSION AUTHORIZATION DEFAULT",
        "RESET ALL; SET app.subtenant_id = ''",
        "SELECT set_config('role', 'none', false)",
        "DISCARD ALL",
        "BEGIN; SET LOCAL ROLE NONE",
    ];
    for (user, client, claimed) in [
        (&slug, &writer, "NULL".to_string()),
        (&named, &sub_writer, format!("'{sub_id}'")),
    ] {
        for attempt in attempts.iter() {
            client.batch_execute(attempt).await.unwrap();
            let result = client.batch_execute(&forged(&id, &claimed)).await;
            assert_eq!(
                sqlstate(&result).as_deref(),
                Some("42501"),
                "{user} after {attempt}: {result:?}"
            );
            client.batch_execute("ROLLBACK").await.ok();
        }
        // Nor by COPY, which row-level security does not take.
        let copied = client
            .batch_execute(
                "COPY audit_log (tenant_id, user_id, action, resource, result) FROM STDIN",
            )
            .await;
        assert_eq!(sqlstate(&copied).as_deref(), Some("0A000"), "{user}");
        // Nor by a function of its own, which runs as the same session
        // (in one transaction: the session is the client's for that long).
        client
            .batch_execute(&format!(
                "BEGIN; CREATE FUNCTION pg_temp.forge() RETURNS void LANGUAGE sql AS $$ {} $$",
                forged(&id, &claimed)
            ))
            .await
            .unwrap();
        let result = client.batch_execute("SELECT pg_temp.forge()").await;
        assert_eq!(sqlstate(&result).as_deref(), Some("42501"), "{user}");
        client.batch_execute("ROLLBACK").await.unwrap();
    }
    assert_eq!(
        entries().await,
        before,
        "a SQL session added an audit entry"
    );

    // The service's own writes still record their entries.
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &key,
            None,
            Some(json!({ "name": "over-http", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(entries().await, before + 1);
    let action: String = admin
        .query_one("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(action, "agents.create");
}

#[tokio::test]
async fn a_tenant_database_that_would_let_sql_sessions_write_its_audit_log_serves_no_writer() {
    let app = spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "wire-forge-old", "tenant_admin").await;
    app.create_subtenant(&id, "wire-forge-old-sub").await;
    let admin = app.server.connect(&tenant_database(&app, &id).await).await;
    let writer = connect(&app, &slug, &key).await.unwrap();
    writer.batch_execute("SELECT 1").await.unwrap();

    // V5 reverted: the revert ends the writer's session, and no writer is
    // served again, at login or at its next transaction.
    admin.batch_execute(V5_DOWN).await.unwrap();
    assert!(writer.simple_query("SELECT 1").await.is_err());
    let v5 = "28000: the tenant's database does not keep SQL sessions from writing its audit log yet: it needs tenant migration V5";
    for user in [slug.clone(), format!("{slug}.wire-forge-old-sub")] {
        assert_eq!(
            refused_before_any_sql(&app, &user, &key).await,
            v5,
            "{user}"
        );
    }
}
