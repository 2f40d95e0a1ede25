//! Revert with down migrations: a run's revert takes back exactly the
//! tenants the run moved forward and lists the rest with the reason; one
//! tenant's revert; refusals for a missing down and for a destructive one
//! not accepted; a down file without its up refused at start-up.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::MASTER_KEY;
use crate::kit::expect_error;
use crate::kit::migrations::{app_on, create_tenants, migrations_dir, server_of_its_own};
use crate::kit::revert::{recorded_version, tenant_state, V2, V2_UP, V3_DOWN, V3_UP};

/// Starts a fleet run to the newest version and waits for its summary.
async fn run_to_end(app: &crate::helpers::TestApp, body: Value) -> Value {
    let response = app
        .admin(Method::POST, "/v1/migrations/runs?wait=true", Some(body))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn reason_of(summary: &Value, tenant: &str) -> (String, Option<String>) {
    let item = summary["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tenant_id"] == tenant)
        .unwrap_or_else(|| panic!("{tenant} is not an item: {summary}"));
    (
        item["state"].as_str().unwrap().to_string(),
        item["reason"].as_str().map(str::to_string),
    )
}

#[tokio::test]
async fn a_run_revert_takes_back_exactly_the_tenants_the_run_moved_and_lists_the_rest_with_their_reason(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&V2);
    let v3 = migrations_dir(&[
        V2[0],
        V2[1],
        ("V3__agent_notes", V3_UP),
        ("V3__agent_notes.down", V3_DOWN),
    ]);
    let before = app_on(&extra, v1.path(), "revert_catalog").await;
    let tenants = create_tenants(&before, 7).await;
    // The last tenant's data breaks V2: it fails in the run.
    let (broken, broken_db) = &tenants[6];
    before
        .server
        .connect(broken_db)
        .await
        .batch_execute("ALTER TABLE agents ADD COLUMN language integer")
        .await
        .unwrap();

    let app = app_on(&extra, v2.path(), "revert_catalog").await;
    let summary = run_to_end(&app, json!({ "canary": 0, "max_failures": 5 })).await;
    assert_eq!(summary["counts"]["succeeded"], 6, "{summary}");
    assert_eq!(summary["counts"]["failed"], 1, "{summary}");
    let run = summary["run"]["id"].as_str().unwrap().to_string();
    // Created after the run: cloned at V2 from the template, not the run's.
    let (late, late_db) = app.create_tenant_named("late").await;
    assert_eq!(tenant_state(&app, &late_db).await, (2, true, 0));

    // A new deploy with V3; one tenant moves on to it.
    let app = app_on(&extra, v3.path(), "revert_catalog").await;
    let (moved, moved_db) = &tenants[0];
    let migrated = app
        .admin(
            Method::POST,
            &format!("/v1/tenants/{moved}/migrations"),
            Some(json!({})),
        )
        .await;
    assert_eq!(migrated.status(), 200);
    // Another was found drifted at V2 (a scan's record).
    let (drifted, drifted_db) = &tenants[5];
    app.catalog_db()
        .await
        .execute(
            "INSERT INTO tenant_drift (tenant_id, state, version) VALUES ($1, 'drifted', 2)",
            &[&drifted.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();

    let response = app
        .admin(
            Method::POST,
            &format!("/v1/migrations/runs/{run}/revert?wait=true"),
            Some(json!({ "accept_data_loss": true, "concurrency": 2 })),
        )
        .await;
    assert_eq!(response.status(), 200);
    let reverted: Value = response.json().await.unwrap();
    assert_eq!(reverted["revert"]["state"], "succeeded", "{reverted}");
    assert_eq!(reverted["counts"]["succeeded"], 4, "{reverted}");
    assert_eq!(reverted["counts"]["skipped"], 3, "{reverted}");
    assert_eq!(reverted["counts"]["total"], 7, "{reverted}");
    for (id, db) in &tenants[1..5] {
        assert_eq!(reason_of(&reverted, id), ("succeeded".into(), None));
        assert_eq!(tenant_state(&app, db).await, (1, false, 1), "{db}");
        assert_eq!(recorded_version(&app, id).await, 1);
    }
    // The rest, listed with the reason and untouched.
    let skipped = |why: &str| ("skipped".to_string(), Some(why.to_string()));
    assert_eq!(
        reason_of(&reverted, moved),
        skipped("moved on by a later run")
    );
    assert_eq!(tenant_state(&app, moved_db).await, (3, true, 0));
    assert_eq!(recorded_version(&app, moved).await, 3);
    assert_eq!(reason_of(&reverted, broken), skipped("failed in the run"));
    assert_eq!(reason_of(&reverted, drifted), skipped("drifted"));
    assert_eq!(tenant_state(&app, drifted_db).await, (2, true, 0));
    assert_eq!(tenant_state(&app, broken_db).await, (1, true, 0));
    assert_eq!(tenant_state(&app, &late_db).await, (2, true, 0));
    assert!(reverted["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["tenant_id"] != late.as_str()));

    // Each reverted tenant's history shows it; the operation is a fleet_revert.
    let history: Value = app
        .admin(
            Method::GET,
            &format!("/v1/tenants/{}/migrations", tenants[1].0),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["schema_version"], 1);
    assert_eq!(history["reverts"][0]["from_version"], 2, "{history}");
    assert_eq!(history["reverts"][0]["to_version"], 1, "{history}");
    assert_eq!(
        app.catalog_count(
            "SELECT count(*) FROM operations WHERE kind = 'fleet_revert' AND state = 'succeeded'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_missing_down_is_refused_naming_the_version_and_a_destructive_one_needs_accept_data_loss()
{
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let without_down = migrations_dir(&[V2[0]]);
    let with_down = migrations_dir(&V2);
    let before = app_on(&extra, v1.path(), "refusals_catalog").await;
    let tenants = create_tenants(&before, 2).await;

    let app = app_on(&extra, without_down.path(), "refusals_catalog").await;
    let summary = run_to_end(&app, json!({ "canary": 0 })).await;
    assert_eq!(summary["counts"]["succeeded"], 2, "{summary}");
    let run = summary["run"]["id"].as_str().unwrap().to_string();
    let revert_path = format!("/v1/migrations/runs/{run}/revert?wait=true");
    let message = expect_error(
        app.admin(
            Method::POST,
            &revert_path,
            Some(json!({ "accept_data_loss": true })),
        )
        .await,
        409,
        "no_down_migration",
    )
    .await;
    assert!(message.contains("version 2"), "{message}");

    // The same V2, now with its down: destructive (DROP COLUMN, line 2).
    let app = app_on(&extra, with_down.path(), "refusals_catalog").await;
    let message = expect_error(
        app.admin(Method::POST, &revert_path, Some(json!({}))).await,
        409,
        "data_loss_not_accepted",
    )
    .await;
    assert!(message.contains("V2__agent_language.down.sql"), "{message}");
    assert!(message.contains("ban-drop-column"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    for (_, db) in &tenants {
        assert_eq!(tenant_state(&app, db).await, (2, true, 0), "nothing ran");
    }
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM migration_reverts")
            .await,
        0
    );
    let response = app
        .admin(
            Method::POST,
            &revert_path,
            Some(json!({ "accept_data_loss": true })),
        )
        .await;
    assert_eq!(response.status(), 200);
    let reverted: Value = response.json().await.unwrap();
    assert_eq!(reverted["counts"]["succeeded"], 2, "{reverted}");
    for (_, db) in &tenants {
        assert_eq!(tenant_state(&app, db).await, (1, false, 1));
    }

    // Below V1 there is no down: reverting it would drop the whole schema.
    let (tenant, _) = &tenants[0];
    let one = format!("/v1/tenants/{tenant}/migrations/revert");
    let message = expect_error(
        app.admin(
            Method::POST,
            &one,
            Some(json!({ "target": 0, "accept_data_loss": true })),
        )
        .await,
        409,
        "no_down_migration",
    )
    .await;
    assert!(message.contains("version 1"), "{message}");
}

#[tokio::test]
async fn one_tenant_is_reverted_on_request_and_its_history_records_it() {
    let extra = server_of_its_own().await;
    let with_down = migrations_dir(&V2);
    let app = app_on(&extra, with_down.path(), "one_revert_catalog").await;
    let (tenant, db) = app.create_tenant_named("reverted").await;
    let (other, other_db) = app.create_tenant_named("kept").await;
    assert_eq!(tenant_state(&app, &db).await, (2, true, 0));
    let one = format!("/v1/tenants/{tenant}/migrations/revert");
    // A scan found it drifted back at V1: once reverted to V1, that record
    // says nothing about the schema the downs left (it becomes unknown).
    app.catalog_db()
        .await
        .execute(
            "INSERT INTO tenant_drift (tenant_id, state, version) VALUES ($1, 'drifted', 1)",
            &[&tenant.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();

    let message = expect_error(
        app.admin(Method::POST, &one, Some(json!({ "target": 1 })))
            .await,
        409,
        "data_loss_not_accepted",
    )
    .await;
    assert!(message.contains("V2__agent_language.down.sql"), "{message}");
    assert_eq!(tenant_state(&app, &db).await, (2, true, 0));

    let response = app
        .admin(
            Method::POST,
            &one,
            Some(json!({ "target": 1, "accept_data_loss": true })),
        )
        .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        (
            &report["from_version"],
            &report["to_version"],
            &report["reverted"]
        ),
        (&json!(2), &json!(1), &json!(1)),
        "{report}"
    );
    assert_eq!(tenant_state(&app, &db).await, (1, false, 1));
    assert_eq!(recorded_version(&app, &tenant).await, 1);
    assert_eq!(tenant_state(&app, &other_db).await, (2, true, 0));
    assert_eq!(recorded_version(&app, &other).await, 2);
    let history: Value = app
        .admin(
            Method::GET,
            &format!("/v1/tenants/{tenant}/migrations"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["schema_version"], 1, "{history}");
    assert_eq!(history["reverts"][0]["state"], "succeeded", "{history}");
    assert_eq!(history["reverts"][0]["from_version"], 2, "{history}");
    assert_eq!(history["reverts"][0]["to_version"], 1, "{history}");
    assert_eq!(
        app.catalog_count(
            "SELECT count(*) FROM audit_log WHERE action = 'tenants.revert_migrations'"
        )
        .await,
        2,
        "the refused request and the revert are both audited"
    );

    assert_eq!(
        app.catalog_count("SELECT count(*) FROM tenant_drift WHERE state = 'drifted'")
            .await,
        0
    );
    // Reverting again to the same version runs nothing; migrating brings V2
    // back (a drifted tenant's migration would be refused).
    let again = app
        .admin(
            Method::POST,
            &one,
            Some(json!({ "target": 1, "accept_data_loss": true })),
        )
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["reverted"], 0);
    let migrated = app
        .admin(
            Method::POST,
            &format!("/v1/tenants/{tenant}/migrations"),
            Some(json!({})),
        )
        .await;
    assert_eq!(migrated.status(), 200);
    assert_eq!(tenant_state(&app, &db).await, (2, true, 1));

    // The command line does the same for the other tenant.
    let url =
        secrecy::ExposeSecret::expose_secret(&extra.server.url("one_revert_catalog")).to_string();
    let mut cmd = crate::kit::binary::command();
    cmd.args([
        "migrate",
        "--tenant",
        &other,
        "--revert-to",
        "1",
        "--accept-data-loss",
    ])
    .env("TENANT_PLANE_DATABASE_URL", &url)
    .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
    .env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", with_down.path());
    let (code, stdout, stderr) = crate::kit::binary::run(&mut cmd).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("version 2 -> 1 (1 reverted)"), "{stdout}");
    assert_eq!(tenant_state(&app, &other_db).await, (1, false, 1));
    assert_eq!(recorded_version(&app, &other).await, 1);
}

/// `tenant-plane tenant list` with `dir` as the tenant migrations.
async fn start_with(url: &str, dir: &std::path::Path) -> (i32, String) {
    let mut cmd = crate::kit::binary::command();
    cmd.args(["tenant", "list"])
        .env("TENANT_PLANE_DATABASE_URL", url)
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", dir);
    let (code, _, stderr) = crate::kit::binary::run(&mut cmd).await;
    (code, stderr)
}

#[tokio::test]
async fn a_down_file_whose_up_is_missing_or_named_otherwise_is_refused_at_start_up() {
    let extra = server_of_its_own().await;
    let good = migrations_dir(&V2);
    let _app = app_on(&extra, good.path(), "down_files_catalog").await;
    let url =
        secrecy::ExposeSecret::expose_secret(&extra.server.url("down_files_catalog")).to_string();
    let (code, stderr) = start_with(&url, good.path()).await;
    assert_eq!(code, 0, "{stderr}");

    let orphan = migrations_dir(&[V2[0], V2[1], ("V3__agent_notes.down", V3_DOWN)]);
    let (code, stderr) = start_with(&url, orphan.path()).await;
    assert_ne!(code, 0, "a down without its up started: {stderr}");
    assert!(stderr.contains("V3__agent_notes.down.sql"), "{stderr}");
    assert!(stderr.contains("no up migration"), "{stderr}");

    let renamed = migrations_dir(&[
        ("V2__agent_language", V2_UP),
        ("V2__language.down", V3_DOWN),
    ]);
    let (code, stderr) = start_with(&url, renamed.path()).await;
    assert_ne!(code, 0, "a down named otherwise started: {stderr}");
    assert!(stderr.contains("V2__language.down.sql"), "{stderr}");
    assert!(stderr.contains("V2__agent_language.sql"), "{stderr}");
}
