//! A fleet run's tenant sessions: never more than its concurrency open on
//! the server at once (counted by the server), and a run stopped by its
//! failures leaves no item half-taken.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::kit::migrations::{
    add_agent, app_on, create_tenants, has_v2, migrations_dir, server_of_its_own, V2_FRAGILE,
};

/// A V2 that takes a noticeable time per tenant, so sessions overlap.
const V2_BULK: &str = "CREATE TABLE call_samples (n integer PRIMARY KEY);
INSERT INTO call_samples SELECT g FROM generate_series(1, 40000) g;";

/// Runs `request` while counting, every 2 ms, the server's sessions named
/// `tenant-plane-migrate`; its answer and the most seen at once.
async fn with_peak_sessions(
    observer: &tokio_postgres::Client,
    request: impl std::future::Future<Output = reqwest::Response>,
) -> (serde_json::Value, i64) {
    tokio::pin!(request);
    let mut peak = 0_i64;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    let response = loop {
        tokio::select! {
            response = &mut request => break response,
            _ = tick.tick() => {
                let open: i64 = observer
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tenant-plane-migrate'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                peak = peak.max(open);
            }
        }
    };
    (response.json().await.unwrap(), peak)
}

#[tokio::test]
async fn a_fleet_run_and_its_revert_at_concurrency_two_never_have_more_than_two_tenant_sessions_open(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[
        ("V2__call_samples", V2_BULK),
        ("V2__call_samples.down", "DROP TABLE call_samples;"),
    ]);
    let before = app_on(&extra, v1.path(), "sessions_catalog").await;
    create_tenants(&before, 16).await;
    let app = app_on(&extra, v2.path(), "sessions_catalog").await;
    let observer = app.server.connect("postgres").await;

    let run = app.admin(
        Method::POST,
        "/v1/migrations/runs?wait=true",
        Some(json!({ "concurrency": 2, "canary": 0 })),
    );
    let (summary, peak) = with_peak_sessions(&observer, run).await;
    assert_eq!(summary["run"]["state"], "succeeded", "{summary}");
    assert_eq!(summary["counts"]["succeeded"], 16, "{summary}");
    // Two at once was reached (the count is a real one), and never more.
    assert_eq!(peak, 2, "peak tenant sessions of the run");

    let run_id = summary["run"]["id"].as_str().unwrap();
    let path = format!("/v1/migrations/runs/{run_id}/revert?wait=true");
    let revert = app.admin(
        Method::POST,
        &path,
        Some(json!({ "concurrency": 2, "accept_data_loss": true })),
    );
    let (reverted, peak) = with_peak_sessions(&observer, revert).await;
    assert_eq!(reverted["counts"]["succeeded"], 16, "{reverted}");
    assert_eq!(peak, 2, "peak tenant sessions of the revert");
}

#[tokio::test]
async fn a_run_stopped_by_its_first_failure_leaves_no_item_running_and_no_tenant_operation_open() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "stop_catalog").await;
    let tenants = create_tenants(&before, 20).await;
    // Tenants 1..5 (after the canary) get data V2 rejects.
    for (_, db) in &tenants[1..5] {
        add_agent(&before, db, "An agent with a name far too long for V2").await;
    }
    let app = app_on(&extra, v2.path(), "stop_catalog").await;
    let summary: serde_json::Value = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({ "concurrency": 1, "canary": 1, "max_failures": 0 })),
        )
        .await
        .json()
        .await
        .unwrap();
    // One session at a time: the canary, then the first broken tenant, and
    // nothing after it. The second worker had taken the next item and waited
    // for the session; it handed the item back.
    assert_eq!(summary["run"]["state"], "stopped", "{summary}");
    assert_eq!(summary["counts"]["succeeded"], 1, "{summary}");
    assert_eq!(summary["counts"]["failed"], 1, "{summary}");
    assert_eq!(summary["counts"]["running"], 0, "{summary}");
    assert_eq!(summary["counts"]["pending"], 18, "{summary}");
    let pending = 18;
    // Items handed back were never begun: no start time, no open operation.
    let run_id = summary["run"]["id"].as_str().unwrap();
    let started_pending = app
        .catalog_count(&format!(
            "SELECT count(*) FROM migration_items
              WHERE run_id = '{run_id}' AND state = 'pending' AND started_at IS NOT NULL"
        ))
        .await;
    assert_eq!(started_pending, 0);
    let open = app
        .catalog_count(
            "SELECT count(*) FROM operations WHERE kind = 'migrate' AND state = 'running'",
        )
        .await;
    assert_eq!(open, 0);
    let untouched: Vec<String> = app
        .catalog_db()
        .await
        .query(
            &format!(
                "SELECT t.db_name FROM migration_items i JOIN tenants t ON t.id = i.tenant_id
                  WHERE i.run_id = '{run_id}' AND i.state = 'pending'"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(untouched.len() as i64, pending);
    for db in &untouched {
        assert_eq!(has_v2(&app, db).await, (false, 0), "{db}");
    }
}
