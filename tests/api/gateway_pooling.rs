//! Transaction pooling: many clients share a few tenant sessions, each
//! session reset between clients, within the server's budget.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use uuid::Uuid;

use crate::helpers::spawn_app_with;
use crate::kit::gateway::{connect, gateway_sessions, tenant_database, tenant_with_key};

#[tokio::test]
async fn a_pool_of_five_sessions_serves_two_hundred_clients_of_one_tenant() {
    let app = spawn_app_with(|s| {
        s.router.pool_size_standard = Some(5);
        s.router.rate_limit_scale = 0.0;
    })
    .await;
    let (id, slug, key) = tenant_with_key(&app, "wire-crowd", "tenant_admin").await;
    let db_name = tenant_database(&app, &id).await;
    let admin = app.server.connect("postgres").await;
    // Counts the gateway's sessions on the tenant's database meanwhile.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (done, peak, dbs) = (done.clone(), peak.clone(), vec![db_name.clone()]);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(gateway_sessions(&admin, &dbs).await, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let clients = futures_util::future::join_all((0..200).map(|i| {
        let (app, slug, key) = (&app, slug.clone(), key.clone());
        async move {
            let db = connect(app, &slug, &key).await.expect("log in");
            let insert = db
                .prepare(
                    "INSERT INTO agents (id, name, type, owner) VALUES ($1, $2, 'chat', 'crowd')",
                )
                .await
                .unwrap();
            for n in 0..3 {
                db.execute(
                    &insert,
                    &[&Uuid::new_v4(), &format!("client {i} agent {n}")],
                )
                .await
                .unwrap();
            }
            let mine: i64 = db
                .query_one(
                    "SELECT count(*) FROM agents WHERE name LIKE $1",
                    &[&format!("client {i} agent %")],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(mine, 3);
            db
        }
    }))
    .await;
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let total: i64 = clients[0]
        .query_one("SELECT count(*) FROM agents WHERE owner = 'crowd'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 600, "every client's every write arrived");
    let peak = peak.load(Ordering::Relaxed);
    assert!((1..=5).contains(&peak), "{peak} sessions for a pool of 5");
}

#[tokio::test]
async fn nothing_one_client_leaves_in_a_session_reaches_the_next_client_of_that_session() {
    let app = spawn_app_with(|s| s.router.pool_size_standard = Some(1)).await;
    let (_, slug, key) = tenant_with_key(&app, "wire-reset", "tenant_admin").await;
    let mut first = connect(&app, &slug, &key).await.unwrap();
    let other_subtenant = Uuid::new_v4();
    // Session state lasts the transaction that made it (transaction
    // pooling): within it, the client's own SET ROLE holds.
    let tx = first.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "SET app.subtenant_id = '{other_subtenant}'; SET statement_timeout = 1234;
         CREATE TEMP TABLE leftover (x int); SELECT pg_advisory_lock(42);
         SET ROLE ai_care_tenant_app; LISTEN somewhere; PREPARE mine AS SELECT 1;"
    ))
    .await
    .unwrap();
    let owner: String = tx
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "ai_care_tenant_app");
    tx.commit().await.unwrap();
    // The one session of the pool now serves another client.
    let second = connect(&app, &slug, &key).await.unwrap();
    let row = second
        .query_one(
            "SELECT current_setting('app.subtenant_id', true), current_setting('statement_timeout'),
                    current_user::text, to_regclass('pg_temp.leftover') IS NULL,
                    pg_try_advisory_lock(42), (SELECT count(*) FROM pg_listening_channels())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).unwrap_or_default(), "");
    assert_ne!(row.get::<_, String>(1), "1234ms");
    assert!(
        row.get::<_, String>(2).starts_with("ai_care_tenant_0"),
        "{}",
        row.get::<_, String>(2)
    );
    assert!(row.get::<_, bool>(3), "the temp table is gone");
    assert!(row.get::<_, bool>(4), "the advisory lock was let go");
    assert_eq!(row.get::<_, i64>(5), 0);
    // Prepared statements of either client still work on the shared session.
    let stmt = first.prepare("SELECT $1::int + 1").await.unwrap();
    second.batch_execute("DISCARD ALL").await.unwrap();
    let two: i32 = first.query_one(&stmt, &[&1i32]).await.unwrap().get(0);
    assert_eq!(two, 2, "made again after DISCARD ALL dropped it");
}

#[tokio::test]
async fn a_client_cannot_become_another_role_by_any_setting_it_may_change() {
    let app = spawn_app_with(|_| {}).await;
    let (_, slug, key) = tenant_with_key(&app, "wire-escape", "tenant_admin").await;
    let db = connect(&app, &slug, &key).await.unwrap();
    for attempt in [
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "SELECT set_config('role', 'postgres', false)",
        "SELECT set_config('session_authorization', 'postgres', false)",
        "BEGIN; SET LOCAL ROLE postgres",
        "ALTER ROLE CURRENT_USER SUPERUSER",
        "CREATE ROLE escaped LOGIN SUPERUSER",
        "COPY agents TO PROGRAM 'true'",
        "SELECT pg_read_file('postgresql.conf')",
    ] {
        let refused = db.batch_execute(attempt).await;
        let code = crate::kit::gateway::sqlstate(&refused);
        assert!(
            matches!(code.as_deref(), Some("42501" | "22023")),
            "{attempt}: {code:?}"
        );
        db.batch_execute("ROLLBACK").await.ok();
    }
    // RESET and DISCARD bring the client back to its own role, no further.
    for reset in ["RESET ROLE", "RESET SESSION AUTHORIZATION", "DISCARD ALL"] {
        db.batch_execute(reset).await.unwrap();
    }
    let who: (String, bool) = {
        let row = db
            .query_one(
                "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(who.0.starts_with("ai_care_tenant_0"), "{}", who.0);
    assert!(!who.1);
}

#[tokio::test]
async fn state_behind_a_try_lock_a_nested_comment_or_a_deallocate_through_the_extended_protocol_reaches_no_next_client(
) {
    let app = spawn_app_with(|s| s.router.pool_size_standard = Some(1)).await;
    let (_, slug, key) = tenant_with_key(&app, "wire-hidden", "tenant_admin").await;
    let first = connect(&app, &slug, &key).await.unwrap();
    // Each its own transaction, on the pool's one session.
    first
        .simple_query("SELECT pg_try_advisory_lock(7)")
        .await
        .unwrap();
    first
        .batch_execute("/* /* */ select */ SET search_path = pg_catalog")
        .await
        .unwrap();
    let second = connect(&app, &slug, &key).await.unwrap();
    let row = second
        .query_one(
            "SELECT (SELECT count(*) FROM pg_locks
                      WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
                    current_setting('search_path')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "the try-lock was let go");
    assert_ne!(row.get::<_, String>(1), "pg_catalog");
    // A DEALLOCATE sent as Parse, Bind and Execute drops the statements
    // the gateway made: the client that uses one has it made again.
    let stmt = first.prepare("SELECT $1::int + 1").await.unwrap();
    second.execute("DEALLOCATE ALL", &[]).await.unwrap();
    let two: i32 = first.query_one(&stmt, &[&1i32]).await.unwrap().get(0);
    assert_eq!(two, 2, "made again after DEALLOCATE ALL dropped it");
}
