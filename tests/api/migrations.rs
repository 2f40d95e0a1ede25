//! Fleet and single-tenant migrations. Each test has a database server of its
//! own: it moves the server's template to a schema version the other tests
//! do not have.

use std::path::Path;
use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use tenant_plane::migrator::FleetOptions;

use crate::cluster::{self, ExtraCluster};
use crate::helpers::{envelope, spawn_app_on, test_settings, TestApp, MASTER_KEY};

const V1: &str = include_str!("../../tenant_template/migrations/V1__tenant_schema.sql");

/// V2 adds a column, and a constraint that rows with long agent names break.
const V2_FRAGILE: &str = "ALTER TABLE agents ADD COLUMN language text;
ALTER TABLE agents ADD CONSTRAINT agents_name_short CHECK (length(name) <= 20);";

/// A migration directory: the real V1 plus `extra` (`(file stem, sql)`).
fn migrations_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("V1__tenant_schema.sql"), V1).unwrap();
    for (stem, sql) in extra {
        std::fs::write(dir.path().join(format!("{stem}.sql")), sql).unwrap();
    }
    dir
}

async fn server_of_its_own() -> ExtraCluster {
    tokio::task::spawn_blocking(cluster::start_extra)
        .await
        .unwrap()
}

/// An app on `extra` whose tenant migrations come from `dir`; `catalog` names
/// the catalog database, so a second app can share it (a new deploy).
async fn app_on(extra: &ExtraCluster, dir: &Path, catalog: &str) -> TestApp {
    let (mut settings, _) = test_settings();
    settings.database_url = Some(extra.server.url(catalog));
    settings.migrations.tenant_dir = Some(dir.to_path_buf());
    spawn_app_on(settings, catalog.to_string(), extra.server.clone()).await
}

/// Creates `n` tenants, ten at a time; returns their ids and databases in id order.
async fn create_tenants(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let slugs: Vec<String> = chunk.iter().map(|i| format!("fleet-{i:03}")).collect();
        let created =
            futures_util::future::join_all(slugs.iter().map(|s| app.create_tenant_named(s))).await;
        out.extend(created);
    }
    out.sort();
    out
}

/// The column count of `agents.language` and the applied V2 rows, per tenant database.
async fn has_v2(app: &TestApp, db: &str) -> (bool, i64) {
    let client = app.server.connect(db).await;
    let column = client
        .query_opt(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'agents' AND column_name = 'language'",
            &[],
        )
        .await
        .unwrap()
        .is_some();
    let applied: i64 = client
        .query_one(
            "SELECT count(*) FROM refinery_schema_history WHERE version = 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (column, applied)
}

async fn add_agent(app: &TestApp, db: &str, name: &str) {
    app.server
        .connect(db)
        .await
        .execute(
            "INSERT INTO agents (id, name, type, owner) VALUES ($1, $2, 'voice', 'seed')",
            &[&uuid::Uuid::now_v7(), &name],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn fifty_tenants_move_to_a_new_version_in_one_run_and_new_tenants_are_never_left_behind() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "fleet_catalog").await;
    let tenants = create_tenants(&before, 50).await;

    // A new deploy carries V2: its start-up moves the template first.
    let app = app_on(&extra, v2.path(), "fleet_catalog").await;
    let histogram: serde_json::Value = app
        .admin(Method::GET, "/v1/migrations/versions", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(histogram["latest_version"], 2);
    assert_eq!(
        histogram["versions"],
        json!([{ "version": 1, "tenants": 50 }])
    );
    assert_eq!(histogram["behind"].as_array().unwrap().len(), 50);

    let response = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({ "concurrency": 4, "canary": 2 })),
        )
        .await;
    assert_eq!(response.status(), 200);
    let summary: serde_json::Value = response.json().await.unwrap();
    assert_eq!(summary["run"]["state"], "succeeded", "{summary}");
    assert_eq!(summary["counts"]["succeeded"], 50);
    for (_, db) in &tenants {
        assert_eq!(has_v2(&app, db).await, (true, 1), "{db}");
    }
    let histogram: serde_json::Value = app
        .admin(Method::GET, "/v1/migrations/versions", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        histogram["versions"],
        json!([{ "version": 2, "tenants": 50 }])
    );
    let run_id = summary["run"]["id"].as_str().unwrap();
    let shown: serde_json::Value = app
        .admin(Method::GET, &format!("/v1/migrations/runs/{run_id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["counts"]["total"], 50);

    // A second run finds nothing to do: the catalog says all are current.
    let again: serde_json::Value = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["counts"]["skipped"], 50, "{again}");
    // With `verify` every database is opened and found current.
    let verified: serde_json::Value = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({ "verify": true })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["counts"]["succeeded"], 50, "{verified}");
    let applied = app
        .catalog_count(&format!(
            "SELECT coalesce(sum(applied), 0)::bigint FROM migration_items WHERE run_id = '{}'",
            verified["run"]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(applied, 0);

    // A tenant created now is cloned from the migrated template.
    let (_, db) = app.create_tenant_named("after-the-run").await;
    assert_eq!(has_v2(&app, &db).await, (true, 1));
}

#[tokio::test]
async fn five_tenants_whose_data_breaks_a_migration_stay_intact_on_the_old_version_until_fixed_and_resumed(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "fragile_catalog").await;
    let tenants = create_tenants(&before, 50).await;
    for (_, db) in &tenants {
        add_agent(&before, db, "Ada").await;
    }
    // Tenants 10..15 (never the canary, which is the first) get data V2 rejects.
    let broken: Vec<_> = tenants[10..15].to_vec();
    for (_, db) in &broken {
        add_agent(&before, db, "An agent with a name far too long for V2").await;
    }

    let app = app_on(&extra, v2.path(), "fragile_catalog").await;
    let summary: serde_json::Value = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({ "concurrency": 4, "canary": 1, "max_failures": 10 })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["run"]["state"], "failed", "{summary}");
    assert_eq!(summary["counts"]["succeeded"], 45);
    assert_eq!(summary["counts"]["failed"], 5);
    let failed: Vec<&str> = summary["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tenant_id"].as_str().unwrap())
        .collect();
    for (id, db) in &broken {
        assert!(failed.contains(&id.as_str()), "{id} not among {failed:?}");
        // Still V1, with every row: the failing migration rolled back whole.
        assert_eq!(has_v2(&app, db).await, (false, 0));
        let rows: i64 = app
            .server
            .connect(db)
            .await
            .query_one("SELECT count(*) FROM agents", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 2);
    }
    assert!(
        summary["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("agents_name_short"),
        "{summary}"
    );
    let run_id = summary["run"]["id"].as_str().unwrap().to_string();
    let finished_before: Vec<(uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>)> = app
        .catalog_db()
        .await
        .query("SELECT tenant_id, finished_at FROM migration_items WHERE state = 'succeeded' ORDER BY tenant_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    // Fix the data, then resume: only the five run again.
    for (_, db) in &broken {
        app.server
            .connect(db)
            .await
            .execute("UPDATE agents SET name = left(name, 20)", &[])
            .await
            .unwrap();
    }
    let resumed: serde_json::Value = app
        .admin(
            Method::POST,
            &format!("/v1/migrations/runs/{run_id}/resume?wait=true"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["run"]["state"], "succeeded", "{resumed}");
    assert_eq!(resumed["counts"]["succeeded"], 50);
    for (_, db) in &broken {
        assert_eq!(has_v2(&app, db).await, (true, 1));
    }
    let finished_after: Vec<(uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>)> = app
        .catalog_db()
        .await
        .query(
            "SELECT tenant_id, finished_at FROM migration_items WHERE state = 'succeeded' AND tenant_id = ANY($1) ORDER BY tenant_id",
            &[&finished_before.iter().map(|(id, _)| *id).collect::<Vec<_>>()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        finished_before, finished_after,
        "finished items were not redone"
    );
}

#[tokio::test]
async fn a_failing_canary_with_no_failures_allowed_leaves_every_other_tenant_pending() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "canary_catalog").await;
    let tenants = create_tenants(&before, 12).await;
    add_agent(
        &before,
        &tenants[0].1,
        "A canary whose agent name is much too long",
    )
    .await;

    // Through the CLI, as an operator would: a progress bar, a summary, exit 1.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"))
        .args([
            "migrate",
            "--all",
            "--canary",
            "1",
            "--max-failures",
            "0",
            "--json",
        ])
        .env(
            "TENANT_PLANE_DATABASE_URL",
            secrecy::ExposeSecret::expose_secret(&extra.server.url("canary_catalog")),
        )
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", v2.path())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(summary["run"]["state"], "stopped", "{summary}");
    assert_eq!(summary["counts"]["failed"], 1);
    assert_eq!(summary["counts"]["pending"], 11);
    assert_eq!(summary["failures"][0]["tenant_id"], tenants[0].0.as_str());
    for (_, db) in &tenants {
        assert_eq!(has_v2(&before, db).await, (false, 0));
    }
}

#[tokio::test]
async fn two_runners_started_together_never_migrate_one_tenant_twice() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "race_catalog").await;
    let tenants = create_tenants(&before, 20).await;
    let a = app_on(&extra, v2.path(), "race_catalog").await;
    let b = app_on(&extra, v2.path(), "race_catalog").await;
    let body = json!({ "concurrency": 4, "canary": 0, "max_failures": 20 });
    let (ra, rb) = tokio::join!(
        a.admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(body.clone())
        ),
        b.admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(body.clone())
        ),
    );
    for response in [ra, rb] {
        let summary: serde_json::Value = response.json().await.unwrap();
        assert_eq!(summary["run"]["state"], "succeeded", "{summary}");
    }
    // Each tenant's V2 was applied exactly once, by one of the two runs.
    let applied: Vec<(uuid::Uuid, i64)> = a
        .catalog_db()
        .await
        .query(
            "SELECT tenant_id, sum(applied)::bigint FROM migration_items GROUP BY tenant_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(applied.len(), 20);
    assert!(applied.iter().all(|(_, n)| *n == 1), "{applied:?}");
    for (_, db) in &tenants {
        assert_eq!(has_v2(&a, db).await, (true, 1));
    }
}

#[tokio::test]
async fn a_run_killed_half_way_resumes_without_redoing_finished_tenants() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "killed_catalog").await;
    let tenants = create_tenants(&before, 30).await;
    let app = app_on(&extra, v2.path(), "killed_catalog").await;
    let state = app.state().await;
    let fleet = state.fleet().clone();
    let run = fleet
        .start(&FleetOptions {
            concurrency: 2,
            canary: 0,
            ..FleetOptions::default()
        })
        .await
        .unwrap();

    // "Kill" the runner once ten tenants are done: its future is dropped mid-flight.
    let ten_done = Arc::new(tokio::sync::Notify::new());
    let notify = ten_done.clone();
    let progress = Arc::new(move |p: tenant_plane::migrator::Progress| {
        if p.succeeded >= 10 {
            notify.notify_one();
        }
    });
    tokio::select! {
        _ = fleet.execute(run.id, progress) => panic!("the run finished before it was killed"),
        _ = ten_done.notified() => {}
    }
    let catalog = app.catalog_db().await;
    let done_before: Vec<uuid::Uuid> = catalog
        .query(
            "SELECT tenant_id FROM migration_items WHERE run_id = $1 AND state = 'succeeded'",
            &[&run.id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(done_before.len() >= 10 && done_before.len() < 30);

    let resumed = fleet.prepare_resume(run.id, true).await.unwrap();
    assert_eq!(resumed.state, "pending");
    let summary = fleet.execute(run.id, Arc::new(|_| {})).await.unwrap();
    assert_eq!(summary.counts.succeeded, 30, "{summary:?}");
    for (_, db) in &tenants {
        assert_eq!(has_v2(&app, db).await, (true, 1), "{db}");
    }
    let redone: i64 = catalog
        .query_one(
            "SELECT count(*) FROM migration_items WHERE run_id = $1 AND tenant_id = ANY($2) AND applied <> 1",
            &[&run.id, &done_before],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(redone, 0, "finished tenants kept their first result");
}

#[tokio::test]
async fn one_tenant_migrates_on_request_with_a_dry_run_first_and_a_target_version() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v3 = migrations_dir(&[
        (
            "V2__agent_language",
            "ALTER TABLE agents ADD COLUMN language text;",
        ),
        ("V3__call_topic", "ALTER TABLE calls ADD COLUMN topic text;"),
    ]);
    let before = app_on(&extra, v1.path(), "single_catalog").await;
    let (id, _) = before.create_tenant_named("single").await;
    let app = app_on(&extra, v3.path(), "single_catalog").await;
    let path = format!("/v1/tenants/{id}/migrations");
    let dry: serde_json::Value = app
        .admin(Method::POST, &path, Some(json!({ "dry_run": true })))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dry["from_version"], 1);
    assert_eq!(dry["pending"].as_array().unwrap().len(), 2, "{dry}");
    let to_2: serde_json::Value = app
        .admin(Method::POST, &path, Some(json!({ "target_version": 2 })))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (to_2["from_version"].as_i64(), to_2["to_version"].as_i64()),
        (Some(1), Some(2))
    );
    let shown: serde_json::Value = app
        .admin(Method::GET, &format!("/v1/tenants/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["schema_version"], 2);
    let rest: serde_json::Value = app
        .admin(Method::POST, &path, Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["to_version"], 3);
    let (status, code, _) = envelope(
        app.admin(
            Method::POST,
            "/v1/migrations/runs",
            Some(json!({ "concurrency": 0 })),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "invalid_field"));
}
