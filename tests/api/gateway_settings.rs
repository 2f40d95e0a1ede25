//! The settings a client asks for at start-up hold in each of its
//! transactions, whichever pooled session serves it, and never reach
//! another client that shares the session.

use crate::helpers::{spawn_app, TestApp};
use crate::kit::gateway::{config, connect, refusal_with, sqlstate, tenant_with_key};

async fn connect_with_options(
    app: &TestApp,
    slug: &str,
    key: &str,
    options: &str,
) -> tokio_postgres::Client {
    let (client, connection) = config(app, slug, key)
        .options(options)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The session's process, its `DateStyle`, `TimeZone` and `search_path`:
/// one simple query, so one transaction (a prepared statement would be a
/// second, and its close a third, which another session may serve).
async fn seen(client: &tokio_postgres::Client) -> (i32, String, String, String) {
    let messages = client
        .simple_query(
            "SELECT pg_backend_pid(), current_setting('DateStyle'), current_setting('TimeZone'), current_setting('search_path')",
        )
        .await
        .unwrap();
    let row = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .unwrap();
    let text = |i: usize| row.get(i).unwrap().to_string();
    (text(0).parse().unwrap(), text(1), text(2), text(3))
}

#[tokio::test]
async fn start_up_settings_hold_in_every_transaction_of_their_client_and_in_no_other_clients_on_the_same_session(
) {
    let app = spawn_app().await;
    let (_, slug, key) = tenant_with_key(&app, "wire-settings", "tenant_admin").await;
    let asking = connect_with_options(
        &app,
        &slug,
        &key,
        r"-c DateStyle=German -c TimeZone=Asia/Tokyo --search-path=pg_catalog,\ public",
    )
    .await;
    let plain = connect(&app, &slug, &key).await.unwrap();
    let (_, default_style, default_zone, default_path) = seen(&plain).await;
    assert_ne!(default_zone, "Asia/Tokyo");
    let mut shared_session = false;
    let mut asking_pids = Vec::new();
    // One after the other: the pool's one idle session serves both.
    for _ in 0..4 {
        let (pid, style, zone, path) = seen(&asking).await;
        assert_eq!(
            (style.as_str(), zone.as_str(), path.as_str()),
            ("German, DMY", "Asia/Tokyo", "pg_catalog, public")
        );
        asking_pids.push(pid);
        let (pid, style, zone, path) = seen(&plain).await;
        assert_eq!(
            (style, zone, path),
            (
                default_style.clone(),
                default_zone.clone(),
                default_path.clone()
            )
        );
        shared_session |= asking_pids.contains(&pid);
    }
    assert!(shared_session, "the two clients never shared a session");
    // A client's own SET of a setting the server does not report lasts
    // its transaction only; its start-up value comes back at its next one.
    asking
        .batch_execute("SET search_path = public")
        .await
        .unwrap();
    let (_, _, _, path) = seen(&asking).await;
    assert_eq!(path, "pg_catalog, public");
}

#[tokio::test]
async fn a_set_of_a_setting_the_server_reports_holds_in_the_clients_next_transactions_on_any_session_and_reaches_no_other_client(
) {
    let app = spawn_app().await;
    let (_, slug, key) = tenant_with_key(&app, "wire-kept", "tenant_admin").await;
    let setting = connect(&app, &slug, &key).await.unwrap();
    let plain = connect(&app, &slug, &key).await.unwrap();
    let (_, default_style, default_zone, _) = seen(&plain).await;
    assert_ne!(default_zone, "Asia/Tokyo");
    // The server tells the client (ParameterStatus) and the client now
    // believes it: so does every later transaction of this client.
    setting
        .batch_execute("SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'German'")
        .await
        .unwrap();
    // Inside a transaction too, and the last value reported counts.
    setting
        .batch_execute("BEGIN; SET LOCAL TimeZone = 'UTC'; COMMIT")
        .await
        .unwrap();
    let mut pids = Vec::new();
    let mut plain_pids = Vec::new();
    for _ in 0..4 {
        let (pid, style, zone, _) = seen(&setting).await;
        assert_eq!(
            (style.as_str(), zone.as_str()),
            ("German, DMY", "Asia/Tokyo")
        );
        pids.push(pid);
        let (pid, style, zone, _) = seen(&plain).await;
        assert_eq!((&style, &zone), (&default_style, &default_zone));
        plain_pids.push(pid);
    }
    assert!(
        pids.iter().any(|p| plain_pids.contains(p)),
        "the two clients never shared a session"
    );
    // A RESET is reported too: the client is back on the defaults.
    setting.batch_execute("RESET TimeZone").await.unwrap();
    let (_, style, zone, _) = seen(&setting).await;
    assert_eq!((style.as_str(), zone), ("German, DMY", default_zone));
}

#[tokio::test]
async fn a_start_up_setting_the_server_refuses_ends_the_connection_before_its_first_statement_runs()
{
    let app = spawn_app().await;
    let (_, slug, key) = tenant_with_key(&app, "wire-settings-bad", "tenant_admin").await;
    let bad = connect_with_options(&app, &slug, &key, "-c DateStyle=nonsense").await;
    let refused = bad
        .batch_execute("INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'x', 'chat', 'x')")
        .await;
    assert_eq!(sqlstate(&refused).as_deref(), Some("22023"), "{refused:?}");
    let message = refused
        .unwrap_err()
        .as_db_error()
        .unwrap()
        .message()
        .to_string();
    assert!(
        message.starts_with(
            "a start-up setting was refused: invalid value for parameter \"DateStyle\""
        ),
        "{message}"
    );
    assert!(bad.is_closed() || bad.batch_execute("SELECT 1").await.is_err());
    let plain = connect(&app, &slug, &key).await.unwrap();
    let (_, style, _, _) = seen(&plain).await;
    assert_ne!(style, "nonsense");
    let written: i64 = plain
        .query_one("SELECT count(*) FROM agents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(written, 0, "the refused client's statement never ran");
    // What the gateway cannot do at all is refused at login.
    let odd = refusal_with(&app, &slug, &key, "-B 100").await;
    assert!(odd.starts_with("0A000: the option \"-B\""), "{odd}");
}
