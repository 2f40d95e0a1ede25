//! A role may set its own session defaults (`ALTER ROLE CURRENT_USER SET
//! …`, also `IN DATABASE`), so a gateway client may set them on the login
//! it shares with its tenant's other clients of the same kind; each new
//! session of that login would start with them. The gateway checks each
//! new session's login, makes the login again when it carries a default
//! the service did not set (which takes them back), and serves the client.

use serde_json::json;
use tenant_plane::domain::DbName;

use crate::kit::gateway::{connect, mint_key, read_only_key, tenant_database, tenant_with_key};
use crate::kit::tenant_db::{pause_writes, read_only_default};

/// The session defaults `login` carries, in any database.
async fn defaults_of(admin: &tokio_postgres::Client, login: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
              WHERE r.rolname = $1",
            &[&login],
        )
        .await
        .unwrap()
        .get(0)
}

/// One value of a session's settings.
async fn show(client: &tokio_postgres::Client, setting: &str) -> String {
    client
        .query_one(&format!("SELECT current_setting('{setting}')"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn session_defaults_a_client_sets_on_its_login_reach_no_other_clients_session_for_writers_or_subtenant_readers(
) {
    let app = crate::helpers::spawn_app().await;
    let admin = app.server.connect("postgres").await;
    let tenant = app.create_tenant("defaults", json!({})).await;
    let id = tenant["id"].as_str().unwrap();
    let branch = app.create_subtenant(id, "defaults-branch").await;
    let branch_id: tenant_plane::domain::TenantId = branch["id"].as_str().unwrap().parse().unwrap();
    let writer_key = mint_key(&app, id, json!({ "name": "w", "role": "tenant_admin" })).await;
    let reader_key = mint_key(&app, id, read_only_key()).await;
    let database = tenant_database(&app, id).await;
    let db = DbName::recognise(&database).unwrap();
    let clients = [
        ("defaults", &writer_key, db.wire_writer()),
        (
            "defaults.defaults-branch",
            &reader_key,
            tenant_plane::domain::subtenant_login(branch_id, true),
        ),
    ];
    for (user, key, login) in clients {
        let first = connect(&app, user, key).await.unwrap();
        first
            .batch_execute(&format!(
                "BEGIN READ WRITE;
                 ALTER ROLE CURRENT_USER SET search_path = pg_catalog;
                 ALTER ROLE CURRENT_USER SET lock_timeout = '1ms';
                 ALTER ROLE CURRENT_USER IN DATABASE \"{database}\" SET work_mem = '64kB';
                 COMMIT;"
            ))
            .await
            .unwrap();
        assert_eq!(defaults_of(&admin, &login).await, 2, "{user}: set");
        // The first client holds its session, so the next client's needs a
        // new one, which would start with the defaults.
        first.batch_execute("BEGIN; SELECT 1").await.unwrap();
        let second = connect(&app, user, key).await.unwrap();
        assert_eq!(
            show(&second, "search_path").await,
            "\"$user\", public",
            "{user}"
        );
        assert_eq!(show(&second, "lock_timeout").await, "0", "{user}");
        assert_eq!(show(&second, "work_mem").await, "4MB", "{user}");
        assert_eq!(defaults_of(&admin, &login).await, 0, "{user}: taken back");
        let rows = second.simple_query("SELECT count(*) FROM agents").await;
        assert!(rows.is_ok(), "{user}: {rows:?}");
        first.batch_execute("COMMIT").await.unwrap();
    }
}

#[tokio::test]
async fn a_paused_tenants_writer_login_starts_its_sessions_read_only_with_nothing_else_whatever_a_client_sets_on_it(
) {
    let app = crate::helpers::spawn_app().await;
    let admin = app.server.connect("postgres").await;
    let (id, slug, key) = tenant_with_key(&app, "defaults-paused", "tenant_admin").await;
    let db = DbName::recognise(&tenant_database(&app, &id).await).unwrap();
    // Paused by read-only defaults alone: the default is the pause.
    pause_writes(&app, &db, true).await;

    let first = connect(&app, &slug, &key).await.unwrap();
    assert!(read_only_default(&admin, &db.wire_writer()).await);
    // Taken away (and another set), then kept beside another: each time
    // the next new session starts read-only, with nothing else.
    for change in [
        "ALTER ROLE CURRENT_USER RESET default_transaction_read_only;
         ALTER ROLE CURRENT_USER SET lock_timeout = '1ms';",
        "ALTER ROLE CURRENT_USER SET work_mem = '64kB';",
    ] {
        first
            .batch_execute(&format!("BEGIN READ WRITE; {change} COMMIT;"))
            .await
            .unwrap();
        // The first client holds its session, so the next one needs a new one.
        first.batch_execute("BEGIN; SELECT 1").await.unwrap();
        let next = connect(&app, &slug, &key).await.unwrap();
        assert_eq!(
            show(&next, "default_transaction_read_only").await,
            "on",
            "{change}"
        );
        assert_eq!(show(&next, "lock_timeout").await, "0", "{change}");
        assert_eq!(show(&next, "work_mem").await, "4MB", "{change}");
        assert!(
            read_only_default(&admin, &db.wire_writer()).await,
            "{change}"
        );
        assert_eq!(defaults_of(&admin, &db.wire_writer()).await, 1, "{change}");
        first.batch_execute("COMMIT").await.unwrap();
    }
}

#[tokio::test]
async fn a_default_a_client_set_that_fails_the_sessions_checks_themselves_is_taken_back_and_the_next_client_served(
) {
    let app = crate::helpers::spawn_app().await;
    let admin = app.server.connect("postgres").await;
    let (id, slug, key) = tenant_with_key(&app, "defaults-rls-off", "tenant_admin").await;
    let db = DbName::recognise(&tenant_database(&app, &id).await).unwrap();
    let first = connect(&app, &slug, &key).await.unwrap();
    // With row security off, reading a table with policies fails, the audit
    // log the first check reads included.
    first
        .batch_execute(
            "BEGIN READ WRITE; ALTER ROLE CURRENT_USER SET row_security = off; COMMIT;
             BEGIN; SELECT 1",
        )
        .await
        .unwrap();
    assert_eq!(defaults_of(&admin, &db.wire_writer()).await, 1, "set");
    let second = connect(&app, &slug, &key).await.unwrap();
    let rows = second.simple_query("SELECT count(*) FROM agents").await;
    assert!(rows.is_ok(), "{rows:?}");
    assert_eq!(show(&second, "row_security").await, "on");
    assert_eq!(
        defaults_of(&admin, &db.wire_writer()).await,
        0,
        "taken back"
    );
    first.batch_execute("COMMIT").await.unwrap();
}
