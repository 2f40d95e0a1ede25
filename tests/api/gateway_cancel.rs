//! Cancel requests through the gateway: the key a client was given at
//! login cancels its running statement on whichever backend serves it; any
//! other key cancels nothing.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::helpers::{spawn_app, TestApp};
use crate::kit::gateway::{connect, tenant_with_key};

/// Waits until a statement starting with `sql` runs on the server.
async fn until_running(app: &TestApp, sql: &str) {
    let admin = app.server.connect("postgres").await;
    let started = Instant::now();
    loop {
        let running: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE state = 'active' AND application_name = 'tenant-plane-gateway'
                    AND starts_with(query, $1)",
                &[&sql],
            )
            .await
            .unwrap()
            .get(0);
        if running > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{sql} never ran"
        );
    }
}

/// The error a running `pg_sleep` ended with: its SQLSTATE and message.
async fn outcome(
    running: tokio::task::JoinHandle<(tokio_postgres::Client, Result<(), tokio_postgres::Error>)>,
) -> (tokio_postgres::Client, String) {
    let (client, result) = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the statement ended")
        .unwrap();
    let e = result.expect_err("pg_sleep(60) was cut short");
    let db = e.as_db_error().expect("a server error");
    (client, format!("{}: {}", db.code().code(), db.message()))
}

#[tokio::test]
async fn a_cancel_request_stops_the_clients_running_statement_and_its_connection_goes_on() {
    let app = spawn_app().await;
    let (_, slug, key) = tenant_with_key(&app, "wire-cancel", "tenant_admin").await;
    let client = connect(&app, &slug, &key).await.unwrap();
    let token = client.cancel_token();
    let running = tokio::spawn(async move {
        let result = client
            .batch_execute("SELECT pg_sleep(60) -- cancelled")
            .await;
        (client, result)
    });
    until_running(&app, "SELECT pg_sleep(60) -- cancelled").await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (client, error) = outcome(running).await;
    assert_eq!(error, "57014: canceling statement due to user request");
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1, "the connection goes on");
}

#[tokio::test]
async fn a_cancel_request_with_a_key_the_gateway_did_not_give_cancels_nothing() {
    let app = spawn_app().await;
    let (_, slug, key) = tenant_with_key(&app, "wire-cancel-guess", "tenant_admin").await;
    let client = connect(&app, &slug, &key).await.unwrap();
    let running = tokio::spawn(async move {
        let result = client.batch_execute("SELECT pg_sleep(60) -- guessed").await;
        (client, result)
    });
    until_running(&app, "SELECT pg_sleep(60) -- guessed").await;
    // Guesses: a CancelRequest (80877102) with keys nobody was given.
    for (pid, secret) in [(1, 1), (0, 0), (i32::MAX, -1)] {
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.gateway_port.unwrap()))
            .await
            .unwrap();
        let mut packet = Vec::new();
        for word in [16, 80877102, pid, secret] {
            packet.extend_from_slice(&i32::to_be_bytes(word));
        }
        socket.write_all(&packet).await.unwrap();
        socket.shutdown().await.ok();
    }
    // Only the free tier's statement timeout (2 s) ends it.
    let (_, error) = outcome(running).await;
    assert_eq!(error, "57014: canceling statement due to statement timeout");
}
