//! A gateway login may `SET ROLE` to the group it is a member of (the
//! tenant role, or its reader), and a role may change its own password and
//! settings. So those groups cannot log in: what a client does to them
//! reaches no session, and no password a client chose opens PostgreSQL.
//! Tenant roles made while they were logins are made groups by the
//! reconciler.

use reqwest::Method;
use serde_json::json;
use tenant_plane::domain::DbName;

use crate::helpers::TestApp;
use crate::kit::gateway::{connect, mint_key, read_only_key, sqlstate, tenant_database};
use crate::kit::{call, ok_json};

/// Creates an agent through the HTTP plane on a session opened after
/// whatever came before (every pool closed first).
async fn http_plane_writes(app: &TestApp, key: &str, name: &str) {
    app.state().await.tenancy().router().close_all().await;
    ok_json(
        call(
            app,
            Method::POST,
            "/v1/agents",
            key,
            None,
            Some(json!({ "name": name, "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
}

async fn can_log_in(admin: &tokio_postgres::Client, role: &str) -> bool {
    admin
        .query_one(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0)
}

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
    }

    // The HTTP plane's new sessions write as before; so does the wire.
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
    let reader = connect(&app, "grouped", &reader_key).await.unwrap();
    let agents: i64 = reader
        .query_one("SELECT count(*) FROM agents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(agents, 2);
}

#[tokio::test]
async fn tenant_roles_made_when_they_could_log_in_become_groups_at_the_next_pass_and_a_paused_one_stays_paused(
) {
    let app = crate::helpers::spawn_app().await;
    let open = app.create_tenant("legacy-open", json!({})).await;
    let paused = app.create_tenant("legacy-paused", json!({})).await;
    let key = mint_key(
        &app,
        open["id"].as_str().unwrap(),
        json!({ "name": "w", "role": "tenant_admin" }),
    )
    .await;
    let admin = app.server.connect("postgres").await;
    let name = |t: &serde_json::Value| DbName::recognise(t["database"].as_str().unwrap()).unwrap();
    let (open_db, paused_db) = (name(&open), name(&paused));
    // What an earlier version left: the tenant role and its reader log in,
    // with no HTTP or gateway reader login; one tenant mid-move, paused.
    for db in [&open_db, &paused_db] {
        admin
            .batch_execute(&format!(
                "DROP ROLE \"{http}\"; DROP ROLE IF EXISTS \"{wire_reader}\";
                 ALTER ROLE \"{db}\" LOGIN PASSWORD 'old'; ALTER ROLE \"{reader}\" LOGIN PASSWORD 'old'",
                http = db.http_login(),
                wire_reader = db.wire_reader(),
                reader = db.reader(),
            ))
            .await
            .unwrap();
    }
    admin
        .batch_execute(&format!(
            "ALTER ROLE \"{paused_db}\" SET default_transaction_read_only = on"
        ))
        .await
        .unwrap();

    let report = app.state().await.reconciler().run_once().await.unwrap();
    let mut converted = report.logins.converted.clone();
    converted.sort();
    let mut want = [open_db.clone(), paused_db.clone()]
        .map(|db| DbName::owner_of(db.as_str()).unwrap().0)
        .to_vec();
    want.sort();
    assert_eq!(converted, want, "{:?}", report.logins);
    assert!(report.logins.failed.is_empty(), "{:?}", report.logins);
    for db in [&open_db, &paused_db] {
        assert!(!can_log_in(&admin, db.as_str()).await, "{db} logs in");
        assert!(
            !can_log_in(&admin, &db.reader()).await,
            "{db}'s reader logs in"
        );
        assert!(can_log_in(&admin, &db.http_login()).await);
        assert!(can_log_in(&admin, &db.wire_reader()).await);
    }
    let read_only = |role: String| {
        let admin = &admin;
        async move {
            admin
                .query_one(
                    "SELECT coalesce('default_transaction_read_only=on' = ANY(rolconfig), false)
                       FROM pg_roles WHERE rolname = $1",
                    &[&role],
                )
                .await
                .unwrap()
                .get::<_, bool>(0)
        }
    };
    assert!(
        read_only(paused_db.http_login()).await,
        "the pause was lost"
    );
    assert!(!read_only(open_db.http_login()).await);
    http_plane_writes(&app, &key, "converted").await;

    let again = app.state().await.reconciler().run_once().await.unwrap();
    assert!(again.logins.converted.is_empty(), "{:?}", again.logins);
    // An HTTP login dropped by hand is made again.
    admin
        .batch_execute(&format!("DROP ROLE \"{}\"", open_db.http_login()))
        .await
        .unwrap();
    let mended = app.state().await.reconciler().run_once().await.unwrap();
    let open_id = DbName::owner_of(open_db.as_str()).unwrap().0;
    assert_eq!(mended.logins.converted, [open_id], "{:?}", mended.logins);
    http_plane_writes(&app, &key, "mended").await;
}
