//! A gateway login may `SET ROLE` to the group it is a member of (the
//! tenant role, or its reader), and a role may change its own password and
//! settings. So those groups cannot log in: what a client does to them
//! reaches no session, and no password a client chose opens PostgreSQL as
//! them. A login whose own password a client changed is set back by the
//! gateway at the next session it opens (`roles_conversion.rs` has the
//! tenants made while their roles were logins).

use serde_json::json;
use tenant_plane::domain::DbName;

use crate::kit::gateway::{
    connect, mint_key, read_only_key, sqlstate, tenant_database, tenant_with_key,
};
use crate::kit::tenant_db::{can_log_in, http_plane_writes, read_only_default};

#[tokio::test]
async fn gateway_clients_that_become_their_group_can_neither_lock_out_the_http_plane_nor_log_in_past_the_gateway(
) {
    let app = crate::helpers::spawn_app().await;
    let tenant = app.create_tenant("grouped", json!({})).await;
    let id = tenant["id"].as_str().unwrap();
    app.create_subtenant(id, "grouped-branch").await;
    let writer_key = mint_key(&app, id, json!({ "name": "w", "role": "tenant_admin" })).await;
    let reader_key = mint_key(&app, id, read_only_key()).await;
    let database = tenant_database(&app, id).await;
    let db = DbName::recognise(&database).unwrap();
    http_plane_writes(&app, &writer_key, "before").await;

    let branch = "grouped.grouped-branch";
    // Readers first: the gateway makes its reader login at its first use.
    let clients = [
        ("grouped", &reader_key, db.reader()),
        (branch, &reader_key, db.reader()),
        ("grouped", &writer_key, db.as_str().to_string()),
        (branch, &writer_key, db.as_str().to_string()),
    ];
    for (user, key, group) in clients {
        let client = connect(&app, user, key).await.unwrap();
        // In one transaction each: the gateway resets the session's role
        // when it goes back to the pool.
        let as_group = |statement: String| {
            let client = &client;
            let group = &group;
            async move {
                let done = client
                    .batch_execute(&format!(
                        "BEGIN READ WRITE; SET ROLE \"{group}\"; {statement}; COMMIT"
                    ))
                    .await;
                client.batch_execute("ROLLBACK").await.ok();
                done
            }
        };
        // What a role may do to itself: harmless to a group no one logs
        // in as.
        for change in [
            "PASSWORD 'chosen-by-a-client'",
            "SET default_transaction_read_only = on",
            "SET statement_timeout = 1",
        ] {
            as_group(format!("ALTER ROLE CURRENT_USER {change}"))
                .await
                .unwrap_or_else(|e| panic!("{user} as {group}: {change}: {e}"));
        }
        // What it may not: log in, or touch the logins.
        for attempt in [
            "ALTER ROLE CURRENT_USER LOGIN".to_string(),
            format!("ALTER ROLE \"{}\" PASSWORD 'x'", db.http_login()),
            format!(
                "ALTER ROLE \"{}\" SET default_transaction_read_only = on",
                db.http_login()
            ),
            format!("ALTER ROLE \"{}\" PASSWORD 'x'", db.wire_reader()),
            format!("CREATE ROLE \"{group}_mine\" LOGIN PASSWORD 'x' IN ROLE \"{group}\""),
        ] {
            let refused = as_group(attempt.clone()).await;
            assert_eq!(
                sqlstate(&refused).as_deref(),
                Some("42501"),
                "{user} as {group}: {attempt}: {refused:?}"
            );
        }
        // Nor, as itself, hand its login to others: PostgreSQL 15 gives a
        // role no admin option on itself (14 did, to its session user).
        let me: String = client
            .query_one("SELECT session_user::text", &[])
            .await
            .unwrap()
            .get(0);
        let granted = client
            .batch_execute(&format!(
                "BEGIN READ WRITE; GRANT \"{me}\" TO ai_care_tenant_reader; COMMIT"
            ))
            .await;
        client.batch_execute("ROLLBACK").await.ok();
        assert_eq!(
            sqlstate(&granted).as_deref(),
            Some("42501"),
            "{me}: {granted:?}"
        );
    }

    // The HTTP plane's new sessions write as before.
    http_plane_writes(&app, &writer_key, "after").await;
    let admin = app.server.connect("postgres").await;
    for group in [db.as_str().to_string(), db.reader()] {
        assert!(!can_log_in(&admin, &group).await, "{group} logs in");
        let Err(refused) = app
            .server
            .connect_as(&database, &group, "chosen-by-a-client")
            .await
        else {
            panic!("{group} logged in with a password a client chose");
        };
        assert!(
            format!("{refused:?}").contains("is not permitted to log in"),
            "{refused:?}"
        );
    }
    // The wire's too, and its readers read.
    let writer = connect(&app, "grouped", &writer_key).await.unwrap();
    writer
        .batch_execute(
            "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'w', 'chat', 'wire')",
        )
        .await
        .unwrap();
    let reader = connect(&app, "grouped", &reader_key).await.unwrap();
    let agents: i64 = reader
        .query_one("SELECT count(*) FROM agents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(agents, 3);
}

#[tokio::test]
async fn a_gateway_login_the_server_refuses_is_made_again_and_the_next_clients_transaction_is_served(
) {
    let app = crate::helpers::spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "relogin", "tenant_admin").await;
    let db = DbName::recognise(&tenant_database(&app, &id).await).unwrap();
    // One client holds the pool's session in a transaction, so the next
    // client's needs a new one.
    let first = connect(&app, &slug, &key).await.unwrap();
    first.batch_execute("BEGIN; SELECT 1").await.unwrap();
    // What a client's `ALTER ROLE CURRENT_USER PASSWORD` does where the
    // server checks passwords (this test cluster trusts local logins, so
    // here the login is dropped instead): the server refuses the login.
    let admin = app.server.connect("postgres").await;
    admin
        .batch_execute(&format!("DROP ROLE \"{}\"", db.wire_writer()))
        .await
        .unwrap();
    assert!(!can_log_in(&admin, &db.wire_writer()).await, "dropped");

    let second = connect(&app, &slug, &key).await.unwrap();
    let served = second.simple_query("SELECT 1").await;
    assert!(served.is_ok(), "{served:?}");
    assert!(can_log_in(&admin, &db.wire_writer()).await, "made again");
    first.batch_execute("COMMIT").await.unwrap();
}

#[tokio::test]
async fn a_writer_login_made_or_made_again_while_the_tenants_writes_are_paused_is_read_only_by_default_for_either_kind_of_pause(
) {
    let app = crate::helpers::spawn_app().await;
    let admin = app.server.connect("postgres").await;
    // A tenant whose reader can read every table is paused by membership
    // and defaults; one whose reader cannot, by read-only defaults alone.
    for (slug, reader_reads_all) in [("paused-late", true), ("paused-late-defaults", false)] {
        let (id, slug, key) = tenant_with_key(&app, slug, "tenant_admin").await;
        let database = tenant_database(&app, &id).await;
        let db = DbName::recognise(&database).unwrap();
        crate::kit::tenant_db::pause_writes(&app, &db, !reader_reads_all).await;
        assert!(!can_log_in(&admin, &db.wire_writer()).await, "not made yet");

        // Made now, at the first login, mid-pause; the client holds its
        // session, so the next client's needs a new one.
        let first = connect(&app, &slug, &key).await.unwrap();
        first.batch_execute("BEGIN; SELECT 1").await.unwrap();
        assert!(read_only_default(&admin, &db.wire_writer()).await, "{slug}");
        // Made again mid-pause: the server refuses the login (dropped here;
        // a client changing its password does the same).
        admin
            .batch_execute(&format!("DROP ROLE \"{}\"", db.wire_writer()))
            .await
            .unwrap();
        let second = connect(&app, &slug, &key).await.unwrap();
        let refused = second
            .batch_execute(
                "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'w', 'chat', 'wire')",
            )
            .await;
        assert_eq!(
            sqlstate(&refused).as_deref(),
            Some("25006"),
            "{slug}: {refused:?}"
        );
        assert!(read_only_default(&admin, &db.wire_writer()).await, "{slug}");
        first.batch_execute("COMMIT").await.unwrap();

        crate::kit::tenant_db::resume_writes(&app, &db).await;
        assert!(
            !read_only_default(&admin, &db.wire_writer()).await,
            "{slug}"
        );
    }
}
