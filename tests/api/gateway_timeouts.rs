//! Transactions the gateway ends on its own: a statement or an idle
//! transaction past the tier's limits (even with PostgreSQL's own turned
//! off), and one whose client left (its locks go with it at once).

use std::time::{Duration, Instant};

use crate::helpers::spawn_app_with;
use crate::kit::gateway::{connect, sqlstate, tenant_database, tenant_with_key};

const LIMIT_MS: u64 = 300;

#[tokio::test]
async fn a_client_that_turns_its_timeouts_off_is_still_held_to_its_tiers_statement_and_idle_limits()
{
    let app = spawn_app_with(|s| {
        s.router.statement_timeout_free_ms = LIMIT_MS;
        s.router.statement_timeout_standard_ms = LIMIT_MS;
        s.router.statement_timeout_enterprise_ms = LIMIT_MS;
        s.router.idle_in_transaction_timeout_ms = LIMIT_MS;
    })
    .await;
    let (_, slug, key) = tenant_with_key(&app, "wire-limits", "tenant_admin").await;
    let client = connect(&app, &slug, &key).await.unwrap();
    // PostgreSQL's own timeout, as the session starts with it.
    let own = client.batch_execute("SELECT pg_sleep(5)").await;
    assert_eq!(sqlstate(&own).as_deref(), Some("57014"), "{own:?}");
    // Turned off for the transaction: the gateway cancels it.
    let started = Instant::now();
    let off = client
        .batch_execute("BEGIN; SET LOCAL statement_timeout = 0; SELECT pg_sleep(5)")
        .await;
    let took = started.elapsed();
    assert_eq!(sqlstate(&off).as_deref(), Some("57014"), "{off:?}");
    assert!(took < Duration::from_secs(3), "cancelled after {took:?}");
    client.batch_execute("ROLLBACK").await.unwrap();

    // Idle inside a transaction with the idle timeout turned off: the
    // gateway ends the connection, and the session with it.
    client
        .batch_execute("BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0; INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'held', 'chat', 'x')")
        .await
        .unwrap();
    let admin = app.server.connect("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !client.is_closed() {
        assert!(Instant::now() < deadline, "the idle transaction was kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = client.batch_execute("SELECT 1").await;
    assert!(after.is_err());
    // Its session is closed, which rolls the transaction back.
    loop {
        let held: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE application_name = 'tenant-plane-gateway' AND state = 'idle in transaction'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if held == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the idle session was kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = connect(&app, &slug, &key).await.unwrap();
    let kept: i64 = fresh
        .query_one("SELECT count(*) FROM agents WHERE name = 'held'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 0, "the transaction was rolled back with its session");
}

#[tokio::test]
async fn a_client_that_leaves_mid_transaction_releases_its_row_locks_at_once_not_at_the_pools_next_checkout(
) {
    let app = spawn_app_with(|_| {}).await;
    let (id, slug, key) = tenant_with_key(&app, "wire-abandon", "tenant_admin").await;
    let leaving = connect(&app, &slug, &key).await.unwrap();
    leaving
        .batch_execute("INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'locked', 'chat', 'x')")
        .await
        .unwrap();
    leaving
        .batch_execute("BEGIN; UPDATE agents SET name = 'changing' WHERE name = 'locked'")
        .await
        .unwrap();
    drop(leaving);
    // Nobody else of the tenant takes a session; the row must be free anyway.
    let admin = app.server.connect(&tenant_database(&app, &id).await).await;
    admin
        .batch_execute(
            "SET lock_timeout = '5s'; UPDATE agents SET name = 'after' WHERE name = 'locked'",
        )
        .await
        .expect("the abandoned transaction's lock was released");
    let names: Vec<String> = admin
        .query("SELECT name FROM agents", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["after"], "rolled back, then changed once");
}

#[tokio::test]
async fn a_client_that_holds_its_transaction_open_by_never_sending_a_sync_is_let_go_and_its_locks_freed(
) {
    use postgres_protocol::message::frontend;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|s| {
        s.router.statement_timeout_standard_ms = LIMIT_MS;
        s.router.idle_in_transaction_timeout_ms = LIMIT_MS;
    })
    .await;
    let (_, slug, key) = tenant_with_key(&app, "wire-unsynced", "tenant_admin").await;
    let other = connect(&app, &slug, &key).await.unwrap();
    other
        .batch_execute("INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'held', 'chat', 'x')")
        .await
        .unwrap();
    // BEGIN, then a row locked, each parsed, bound and run, then a Flush:
    // the answers come, and no ReadyForQuery, since no Sync was sent.
    let mut stream = crate::kit::gateway_raw::logged_in(&app, &slug, &key).await;
    let mut out = bytes::BytesMut::new();
    for sql in ["BEGIN", "SELECT 1 FROM agents FOR UPDATE"] {
        frontend::parse("", sql, std::iter::empty(), &mut out).unwrap();
        crate::kit::gateway_raw::bind_unnamed(&mut out);
        frontend::execute("", 0, &mut out).unwrap();
    }
    frontend::flush(&mut out);
    stream.write_all(&out).await.unwrap();
    let started = Instant::now();
    let mut answers = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answers))
        .await
        .expect("the gateway lets the client go")
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(LIMIT_MS), "after {took:?}");
    let text = String::from_utf8_lossy(&answers);
    assert!(text.contains("C25P03"), "{text:?}");
    // The row's lock went with the transaction.
    let freed = other
        .batch_execute("BEGIN; SET LOCAL lock_timeout = '2s'; UPDATE agents SET name = 'free' WHERE name = 'held'; COMMIT")
        .await;
    assert!(freed.is_ok(), "{freed:?}");
}

#[tokio::test]
async fn a_pipeline_the_client_drives_by_flush_is_held_to_each_statements_limit_not_their_sum() {
    use postgres_protocol::message::{backend::Message, frontend};
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|s| {
        s.router.statement_timeout_standard_ms = LIMIT_MS;
        s.router.idle_in_transaction_timeout_ms = LIMIT_MS;
    })
    .await;
    let (_, slug, key) = tenant_with_key(&app, "wire-flushed", "tenant_admin").await;
    let mut stream = crate::kit::gateway_raw::logged_in(&app, &slug, &key).await;
    let mut buf = bytes::BytesMut::new();
    // Five statements of 200 ms each, every one within the 300 ms limit,
    // a second in all, each sent and answered before the next, no Sync.
    for _ in 0..5 {
        let mut out = bytes::BytesMut::new();
        frontend::parse("", "SELECT pg_sleep(0.2)", std::iter::empty(), &mut out).unwrap();
        crate::kit::gateway_raw::bind_unnamed(&mut out);
        frontend::execute("", 0, &mut out).unwrap();
        frontend::flush(&mut out);
        stream.write_all(&out).await.unwrap();
        loop {
            match crate::kit::gateway_raw::next(&mut stream, &mut buf).await {
                Message::CommandComplete(_) => break,
                Message::ErrorResponse(_) => panic!("a statement within its limit was cancelled"),
                _ => {}
            }
        }
    }
    let mut out = bytes::BytesMut::new();
    frontend::sync(&mut out);
    stream.write_all(&out).await.unwrap();
    loop {
        match crate::kit::gateway_raw::next(&mut stream, &mut buf).await {
            Message::ReadyForQuery(_) => break,
            Message::ErrorResponse(_) => panic!("the pipeline was ended"),
            _ => {}
        }
    }
}
