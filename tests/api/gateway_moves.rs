//! A move under gateway clients: writes fail while the tenant's writes are
//! paused (even for a client that asks for a read-write transaction), reads
//! go on, no acknowledged write is lost, and an idle client's next
//! transaction reaches the new server on the connection it already had.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::cluster::start_extra;
use crate::helpers::{spawn_app_without_rate_limits, TestApp};
use crate::kit::gateway::{connect, tenant_database, tenant_with_key};
use crate::kit::servers::{register, server_of};

/// What one writing client saw: ids acknowledged, each refusal's code, and
/// the transactions whose outcome it could not know (its session ended
/// under it, or none could be had in time), after which it reconnected.
#[derive(Default)]
struct Writes {
    acknowledged: Vec<uuid::Uuid>,
    refused: Vec<String>,
    /// The SQLSTATE, where the server (or the gateway) sent one.
    interrupted: Vec<Option<String>>,
}

/// Read-only (the pause's default) or permission denied (a read-write
/// transaction asked for anyway): refused, never written on the source.
const REFUSED: [&str; 2] = ["25006", "42501"];

/// Writes agents until `stop`, each in its own transaction: `escaping`
/// asks for a read-write transaction with the read-only default turned off.
fn writer(
    app: &TestApp,
    slug: &str,
    key: &str,
    escaping: bool,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Writes> {
    let config = crate::kit::gateway::config(app, slug, key);
    tokio::spawn(async move {
        let mut seen = Writes::default();
        let open = || async {
            let mut last = None;
            for _ in 0..100 {
                match config.connect(tokio_postgres::NoTls).await {
                    Ok((client, connection)) => {
                        tokio::spawn(connection);
                        return client;
                    }
                    // A login while the tenant's sessions are being ended.
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("the writer could not log in again: {last:?}");
        };
        let mut client = open().await;
        while !stop.load(Ordering::Relaxed) {
            let id = uuid::Uuid::new_v4();
            let insert = format!(
                "INSERT INTO agents (id, name, type, owner) VALUES ('{id}', 'w', 'chat', 'wire')"
            );
            let sql = if escaping {
                format!("BEGIN READ WRITE; SET LOCAL transaction_read_only = off; {insert}; COMMIT")
            } else {
                insert
            };
            match client.batch_execute(&sql).await {
                Ok(()) => seen.acknowledged.push(id),
                Err(e) => {
                    let code = e.as_db_error().map(|d| d.code().code().to_string());
                    match code {
                        Some(code) if REFUSED.contains(&code.as_str()) => {
                            seen.refused.push(code);
                            client.batch_execute("ROLLBACK").await.ok();
                        }
                        // Ended mid-transaction by the pause (57P01,
                        // 08006), or no session in time (53300): the
                        // outcome is unknown; start afresh.
                        other => {
                            seen.interrupted.push(other);
                            client = open().await;
                        }
                    }
                }
            }
        }
        seen
    })
}

#[tokio::test]
async fn a_move_under_gateway_writers_loses_no_acknowledged_write_and_an_idle_client_follows_it_without_reconnecting(
) {
    let app = spawn_app_without_rate_limits().await;
    let (tid, slug, key) = tenant_with_key(&app, "wire-mover", "tenant_admin").await;
    let db = tenant_database(&app, &tid).await;
    let extra = start_extra();
    let target = register(&app, "pg-wire-target", &extra, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let idle = connect(&app, &slug, &key).await.unwrap();
    idle.batch_execute(
        "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'before', 'chat', 'wire')",
    )
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let plain = writer(&app, &slug, &key, false, stop.clone());
    let escaping = writer(&app, &slug, &key, true, stop.clone());
    let op = crate::kit::servers::move_tenant(&app, &tid, &target).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    stop.store(true, Ordering::Relaxed);
    let (plain, escaping) = (plain.await.unwrap(), escaping.await.unwrap());
    for seen in [&plain, &escaping] {
        for code in seen.interrupted.iter().flatten() {
            assert!(
                matches!(code.as_str(), "57P01" | "08006" | "53300" | "57P03"),
                "an interruption no pause explains: {code}"
            );
        }
    }
    let count = |seen: &Writes, code: &str| seen.refused.iter().filter(|c| *c == code).count();
    eprintln!(
        "gateway move: plain {} acknowledged, {} read-only, {} interrupted; escaping {} acknowledged, {} permission denied, {} interrupted",
        plain.acknowledged.len(),
        count(&plain, "25006"),
        plain.interrupted.len(),
        escaping.acknowledged.len(),
        count(&escaping, "42501"),
        escaping.interrupted.len()
    );
    assert_eq!(server_of(&app, &tid).await, target);
    // The idle client's next transaction runs on the new server.
    idle.batch_execute(
        "INSERT INTO agents (id, name, type, owner) VALUES (gen_random_uuid(), 'after', 'chat', 'wire')",
    )
    .await
    .expect("the idle client's next transaction");
    let new_db = extra.server.connect(&db).await;
    let after: i64 = new_db
        .query_one(
            "SELECT count(*) FROM agents WHERE name IN ('before', 'after')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        after, 2,
        "the row from before the move, and the one after on the new server"
    );
    // Every acknowledged write is there.
    let present: std::collections::HashSet<uuid::Uuid> = new_db
        .query("SELECT id FROM agents", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let acknowledged: Vec<_> = plain
        .acknowledged
        .iter()
        .chain(&escaping.acknowledged)
        .collect();
    assert!(acknowledged.len() > 2, "the writers wrote");
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !present.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert_eq!(app.unfinished_operations().await, 0);
}
