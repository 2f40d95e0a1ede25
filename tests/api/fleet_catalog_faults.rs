//! A fleet run or a revert whose worker cannot write to the catalog stops
//! taking tenants, and its operation ends `failed` with
//! `catalog_unavailable`: not as a cancel, and not as too many tenant
//! failures, which neither was. A trigger of the test's own refuses to
//! record any tenant's end in the run's (or the revert's) ledger, a real
//! catalog error on the worker's write.

use reqwest::Method;
use serde_json::{json, Value};

use crate::cluster::ExtraCluster;
use crate::helpers::TestApp;
use crate::kit::migrations::{app_on, create_tenants, migrations_dir, server_of_its_own};
use crate::kit::revert::V2;

/// A service on a server of its own, with `tenants` tenants made at V1,
/// now holding V2 (and its down): its server, V2's files, and the service.
async fn upgraded(catalog: &str, tenants: usize) -> (ExtraCluster, tempfile::TempDir, TestApp) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&V2);
    let before = app_on(&extra, v1.path(), catalog).await;
    create_tenants(&before, tenants).await;
    before.stop().await;
    let app = app_on(&extra, v2.path(), catalog).await;
    (extra, v2, app)
}

/// Makes every write that ends an item of `ledger` fail.
async fn refuse_item_endings(app: &TestApp, ledger: &str) {
    let sql = format!(
        "CREATE FUNCTION test_refuse_ending() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'the test refuses to record an item''s end'; END $$;
         CREATE TRIGGER test_refuse_ending BEFORE UPDATE ON {ledger}
             FOR EACH ROW WHEN (NEW.state NOT IN ('pending', 'running'))
             EXECUTE FUNCTION test_refuse_ending();"
    );
    app.catalog_db().await.batch_execute(&sql).await.unwrap();
}

/// Starts `path` (a run or a revert, one tenant at a time) and follows its
/// operation to its end; returns the operation and its subject's summary.
async fn started_and_followed(
    app: &TestApp,
    path: &str,
    body: Value,
    summary: &str,
) -> (Value, Value) {
    let started = app.admin(Method::POST, path, Some(body)).await;
    let op = app.follow(started).await;
    let subject = op["subject"].as_str().expect("its subject").to_string();
    let summary = app
        .admin(Method::GET, &format!("{summary}/{subject}"), None)
        .await
        .json()
        .await
        .unwrap();
    (op, summary)
}

fn assert_ended_for_the_catalog(op: &Value, record: &Value) {
    assert_eq!(op["state"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "catalog_unavailable", "{op}");
    let message = op["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("catalog"), "{op}");
    assert!(!message.contains("max_failures"), "{op}");
    // An item whose end was not recorded is left for a resume.
    assert_eq!(record["state"], "stopped", "{record}");
    assert_eq!(record["error"], op["error"]["message"], "{record}");
}

#[tokio::test]
async fn a_fleet_run_whose_worker_cannot_write_the_catalog_fails_as_catalog_unavailable_not_too_many_failures(
) {
    let (_extra, _v2, app) = upgraded("halt_run_catalog", 3).await;
    refuse_item_endings(&app, "migration_items").await;
    let (op, summary) = started_and_followed(
        &app,
        "/v1/migrations/runs",
        json!({ "canary": 0, "concurrency": 1 }),
        "/v1/migrations/runs",
    )
    .await;
    assert_ended_for_the_catalog(&op, &summary["run"]);
}

#[tokio::test]
async fn a_revert_whose_worker_cannot_write_the_catalog_fails_as_catalog_unavailable_not_cancelled()
{
    let (_extra, _v2, app) = upgraded("halt_revert_catalog", 3).await;
    let ran = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({ "canary": 0 })),
        )
        .await;
    let ran: Value = ran.json().await.unwrap();
    assert_eq!(ran["counts"]["succeeded"], 3, "{ran}");
    let run = ran["run"]["id"].as_str().unwrap();
    refuse_item_endings(&app, "migration_revert_items").await;
    let (op, summary) = started_and_followed(
        &app,
        &format!("/v1/migrations/runs/{run}/revert"),
        json!({ "accept_data_loss": true, "concurrency": 1 }),
        "/v1/migrations/reverts",
    )
    .await;
    assert_ended_for_the_catalog(&op, &summary["revert"]);
}

#[tokio::test]
async fn the_cli_fails_a_run_whose_only_tenant_was_migrated_but_could_not_be_recorded() {
    // One tenant: its end unrecorded, nothing is pending or failed, and
    // only the run's state says it did not finish.
    let (_extra, v2, app) = upgraded("halt_cli_catalog", 1).await;
    refuse_item_endings(&app, "migration_items").await;
    let dir = v2.path().to_str().unwrap();
    let env = [("TENANT_PLANE_MIGRATIONS_TENANT_DIR", dir)];
    let (code, out, err) = crate::kit::cli::cli_env(&app, &["migrate", "--all"], &env).await;
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("the run ended stopped") && err.contains("catalog"),
        "{out}{err}"
    );
}
