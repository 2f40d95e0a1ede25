//! Applications reach their tenant's database through the gateway: SQL
//! from tokio-postgres and psql, prepared statements across transactions,
//! transactions that commit or roll back.

use reqwest::Method;
use uuid::Uuid;

use crate::helpers::spawn_app;
use crate::kit::gateway::{connect, tenant_with_key};
use crate::kit::{call, ok_json};

#[tokio::test]
async fn an_application_runs_selects_inserts_prepared_statements_and_transactions_through_the_gateway(
) {
    let app = spawn_app().await;
    let (_, slug, key) = tenant_with_key(&app, "wire-app", "tenant_admin").await;
    let db = connect(&app, &slug, &key)
        .await
        .expect("log in with the key");

    // The simple protocol, and the extended one with parameters.
    let row = db.simple_query("SELECT current_database()").await.unwrap();
    let tokio_postgres::SimpleQueryMessage::Row(row) = &row[1] else {
        panic!("no row: {row:?}");
    };
    assert!(row.get(0).unwrap().starts_with("ai_care_tenant_"));
    let agent = Uuid::new_v4();
    db.execute(
        "INSERT INTO agents (id, name, type, owner) VALUES ($1, $2, 'chat', 'wire')",
        &[&agent, &"Wired"],
    )
    .await
    .unwrap();

    // One prepared statement, used in many transactions (and so on
    // whichever pooled session serves each).
    let by_id = db
        .prepare("SELECT name FROM agents WHERE id = $1")
        .await
        .unwrap();
    for _ in 0..50 {
        let name: String = db.query_one(&by_id, &[&agent]).await.unwrap().get(0);
        assert_eq!(name, "Wired");
    }

    // A transaction rolled back leaves nothing; one committed stays.
    let mut db = db;
    let gone = Uuid::new_v4();
    let tx = db.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO agents (id, name, type, owner) VALUES ($1, 'Gone', 'voice', 'wire')",
        &[&gone],
    )
    .await
    .unwrap();
    let seen: i64 = tx
        .query_one("SELECT count(*) FROM agents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 2, "the transaction sees its own row");
    tx.rollback().await.unwrap();
    let kept = Uuid::new_v4();
    let tx = db.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO agents (id, name, type, owner) VALUES ($1, 'Kept', 'voice', 'wire')",
        &[&kept],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let count: i64 = db
        .query_one("SELECT count(*) FROM agents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);

    // The HTTP plane reads the same rows, with the same key.
    let read = ok_json(
        call(
            &app,
            Method::GET,
            &format!("/v1/agents/{kept}"),
            &key,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(read["name"], "Kept");
    // An error inside a transaction is the server's own; the transaction
    // stays the client's (aborted, as PostgreSQL keeps it) until it ends it.
    let error = db
        .batch_execute("BEGIN; SELECT 1/0; COMMIT")
        .await
        .unwrap_err();
    assert_eq!(error.as_db_error().unwrap().code().code(), "22012");
    let aborted = db.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(aborted.as_db_error().unwrap().code().code(), "25P02");
    db.batch_execute("ROLLBACK").await.unwrap();
    let name: String = db.query_one(&by_id, &[&agent]).await.unwrap().get(0);
    assert_eq!(name, "Wired");
}

#[tokio::test]
async fn psql_logs_in_with_a_key_and_runs_a_select_an_insert_and_a_transaction() {
    let app = spawn_app().await;
    let (_, slug, key) = tenant_with_key(&app, "wire-psql", "tenant_admin").await;
    let agent = Uuid::new_v4();
    let script = format!(
        "SELECT 'hello from ' || current_user;
         BEGIN;
         INSERT INTO agents (id, name, type, owner) VALUES ('{agent}', 'From psql', 'chat', 'psql');
         COMMIT;
         PREPARE one AS SELECT name FROM agents WHERE id = $1;
         SELECT name FROM agents WHERE id = '{agent}';"
    );
    let out = tokio::process::Command::new(psql())
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args([
            "-p",
            &app.gateway_port.unwrap().to_string(),
            "-U",
            &slug,
            "-d",
            &slug,
        ])
        .args(["-c", &script])
        .env("PGPASSWORD", &key)
        .env("PGSSLMODE", "disable")
        .output()
        .await
        .expect("run psql");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "psql failed ({:?}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello from ai_care_tenant_"), "{stdout}");
    assert!(stdout.trim_end().ends_with("From psql"), "{stdout}");
    let wrong = tokio::process::Command::new(psql())
        .args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &app.gateway_port.unwrap().to_string(),
        ])
        .args(["-U", &slug, "-d", &slug, "-c", "SELECT 1"])
        .env("PGPASSWORD", "tpk_wrong_key")
        .env("PGSSLMODE", "disable")
        .output()
        .await
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

/// The server's own psql (beside its initdb), as the tests' cluster finds it.
fn psql() -> std::path::PathBuf {
    let binaries = tenant_plane::local_pg::PgBinaries::locate(None).expect("PostgreSQL 15");
    // PATH may hold links to the server programs alone: psql is beside
    // where they lead.
    std::fs::canonicalize(&binaries.initdb)
        .expect("initdb")
        .with_file_name("psql")
}
