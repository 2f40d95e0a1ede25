//! Read-only keys on the wire: they log in as the tenant's reader login, a
//! member of a group that holds SELECT alone, so no SQL the client writes
//! can change a row.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::kit::gateway::{
    connect, mint_key, read_only_key, refusal, tenant_database, tenant_with_key,
};

#[tokio::test]
async fn a_read_only_key_reads_every_row_and_no_statement_or_setting_it_may_send_changes_one() {
    let app = spawn_app().await;
    let (id, slug, admin_key) = tenant_with_key(&app, "wire-reader", "tenant_admin").await;
    let writer = connect(&app, &slug, &admin_key).await.unwrap();
    writer
        .batch_execute(
            "INSERT INTO agents (id, name, type, owner)
             VALUES (gen_random_uuid(), 'kept', 'chat', 'wire'), (gen_random_uuid(), 'also kept', 'voice', 'wire')",
        )
        .await
        .unwrap();
    let key = mint_key(&app, &id, read_only_key()).await;
    let reader = connect(&app, &slug, &key).await.unwrap();
    let row = reader
        .query_one("SELECT current_user::text, count(*) FROM agents", &[])
        .await
        .unwrap();
    let (user, agents): (String, i64) = (row.get(0), row.get(1));
    let database = tenant_database(&app, &id).await;
    assert_eq!(user, format!("{database}_wire_reader"));
    assert_eq!(agents, 2, "every row of the tenant");
    let tenant_role = database.as_str();
    for attempt in [
        "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'x', 'chat', 'x')"
            .to_string(),
        "UPDATE agents SET name = 'changed'".into(),
        "DELETE FROM agents".into(),
        "TRUNCATE calls".into(),
        "BEGIN READ WRITE; UPDATE agents SET name = 'changed'".into(),
        "SET default_transaction_read_only = off; DELETE FROM agents".into(),
        "SELECT set_config('default_transaction_read_only', 'off', false); DELETE FROM agents"
            .into(),
        "BEGIN; SET LOCAL transaction_read_only = off; DELETE FROM agents".into(),
        "SET ROLE ai_care_tenant_app".into(),
        format!("SET ROLE {tenant_role}"),
        format!("SET SESSION AUTHORIZATION {tenant_role}"),
        format!("SELECT set_config('role', '{tenant_role}', false)"),
        "BEGIN; SET LOCAL ROLE ai_care_tenant_app".into(),
        "RESET ROLE; DELETE FROM agents".into(),
        "SET app.subtenant_id = ''; DELETE FROM agents".into(),
        "CREATE TABLE smuggled (x int)".into(),
        "CREATE TEMP TABLE smuggled (x int)".into(),
        "GRANT ai_care_tenant_app TO CURRENT_USER".into(),
        "ALTER TABLE agents DISABLE ROW LEVEL SECURITY".into(),
        "COPY agents FROM STDIN".into(),
        "BEGIN READ WRITE; SELECT lo_from_bytea(0, 'smuggled')".into(),
        "BEGIN READ WRITE; SELECT lo_create(0)".into(),
    ] {
        let refused = reader.batch_execute(&attempt).await;
        let code = crate::kit::gateway::sqlstate(&refused);
        assert!(
            matches!(code.as_deref(), Some("42501" | "25006" | "22023" | "42704")),
            "{attempt}: {code:?} {refused:?}"
        );
        reader.batch_execute("ROLLBACK").await.ok();
    }
    // DISCARD ALL runs alone (not in a transaction block); it brings the
    // session back to its own role and its defaults: read-only, and
    // without the privilege when a transaction says read-write.
    reader.batch_execute("DISCARD ALL").await.unwrap();
    let refused = reader
        .batch_execute("DELETE FROM agents")
        .await
        .unwrap_err();
    assert_eq!(refused.as_db_error().unwrap().code().code(), "25006");
    let refused = reader
        .batch_execute("BEGIN READ WRITE; DELETE FROM agents")
        .await
        .unwrap_err();
    assert_eq!(refused.as_db_error().unwrap().code().code(), "42501");
    reader.batch_execute("ROLLBACK").await.unwrap();
    let names: Vec<String> = writer
        .query("SELECT name FROM agents ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["also kept", "kept"], "nothing changed");
    // The reader keeps reading after all that, as itself.
    let user: String = reader
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, format!("{database}_wire_reader"));
}

#[tokio::test]
async fn a_key_that_reads_only_some_of_the_tenants_tables_is_refused_with_what_it_lacks() {
    let app = spawn_app().await;
    let (id, slug, _) = tenant_with_key(&app, "wire-reader-narrow", "tenant_admin").await;
    let key = mint_key(
        &app,
        &id,
        json!({ "name": "agents only", "role": "tenant_admin", "permissions": [
            { "resource": "agents", "actions": ["read"], "scope": "tenant" },
        ] }),
    )
    .await;
    let refused = refusal(&app, &slug, &key).await;
    assert!(
        refused.starts_with("28000: this key may not read all of the tenant's agents and calls"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_tenant_made_before_readers_existed_gets_its_reader_at_its_first_read_only_login() {
    let app = spawn_app().await;
    let (id, slug, _) = tenant_with_key(&app, "wire-reader-late", "tenant_admin").await;
    let database = tenant_database(&app, &id).await;
    // As an older build left it: no reader role on the server.
    app.server
        .connect("postgres")
        .await
        .batch_execute(&format!(
            "REVOKE CONNECT ON DATABASE \"{database}\" FROM \"{database}_reader\"; DROP ROLE \"{database}_reader\""
        ))
        .await
        .unwrap();
    let key = mint_key(&app, &id, read_only_key()).await;
    let reader = connect(&app, &slug, &key).await.unwrap();
    let row = reader
        .query_one(
            "SELECT current_user::text, (SELECT count(*) FROM agents)",
            &[],
        )
        .await
        .unwrap();
    let (who, agents): (String, i64) = (row.get(0), row.get(1));
    assert_eq!(who, format!("{database}_wire_reader"));
    assert_eq!(agents, 0);
}
