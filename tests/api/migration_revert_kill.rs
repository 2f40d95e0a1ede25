//! A run's revert killed part-way (kill -9 of the real binary between two
//! tenants, or just after a tenant's database was reverted and before the
//! ledger or the catalog say so) is taken over by the service from its
//! ledger and finishes without reverting any tenant twice: V2's down writes
//! a row into a table it leaves in place, so each tenant counts its reverts.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::MASTER_KEY;
use crate::kit::migrations::{
    app_on, app_on_quiet, create_tenants, migrations_dir, server_of_its_own,
};
use crate::kit::revert::{recorded_version, tenant_state, V2};

#[tokio::test]
async fn a_revert_killed_between_tenants_resumes_without_reverting_any_tenant_twice() {
    // Killed once the third tenant's item is recorded.
    let failpoints = "fleet_revert.between_items=2*off->return(kill)";
    let (recorded, _) = killed_and_resumed(failpoints, "kill_between").await;
    assert_eq!(recorded, 3);
}

#[tokio::test]
async fn a_revert_killed_after_a_tenant_was_reverted_but_not_recorded_never_reverts_it_again() {
    // Killed once the second tenant's database is reverted, before its item
    // (or its catalog version) records it: the item is left running.
    let failpoints = "fleet_revert.after_tenant=1*off->return(kill)";
    let (recorded, reverted) = killed_and_resumed(failpoints, "kill_after").await;
    // The first tenant's item is recorded after its session slot is given
    // back, so the second may be reverted (and the kill come) first: one
    // item or none recorded, and at least one tenant reverted beyond them.
    assert!(recorded <= 1, "{recorded} items recorded");
    assert!(
        reverted > recorded,
        "{reverted} reverted, {recorded} recorded: none left unrecorded"
    );
}

/// Runs a revert of six tenants in the CLI with `failpoints`, which kill
/// it; restarts the service, which takes the revert over; checks that each
/// tenant was reverted exactly once. Returns the items recorded before the
/// kill, and the tenant databases reverted by then.
async fn killed_and_resumed(failpoints: &str, catalog_name: &str) -> (i64, i64) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&V2);
    // Without V2's files: it must not be the one that takes the killed
    // revert over (it would fail it, `no_down_migration`).
    let before = app_on_quiet(&extra, v1.path(), catalog_name).await;
    let tenants = create_tenants(&before, 6).await;
    // Stopped: its reconciler looks for dead owners every 2 s whatever its
    // interval, and a takeover by it fails every tenant it reverts.
    before.stop().await;
    let app = app_on(&extra, v2.path(), catalog_name).await;
    let response = app
        .admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({ "canary": 0 })),
        )
        .await;
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["counts"]["succeeded"], 6, "{summary}");
    let run = summary["run"]["id"].as_str().unwrap().to_string();

    // The CLI reverts one tenant at a time and kills itself (SIGKILL) at
    // the failpoint.
    let url = secrecy::ExposeSecret::expose_secret(&extra.server.url(catalog_name)).to_string();
    let mut cmd = crate::kit::binary::command();
    cmd.args([
        "migrate",
        "--revert",
        &run,
        "--accept-data-loss",
        "--concurrency",
        "1",
    ])
    .env("TENANT_PLANE_DATABASE_URL", &url)
    .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
    .env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", v2.path())
    .env("FAILPOINTS", failpoints);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the CLI ended")
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "the revert did not reach its failpoint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let catalog = app.catalog_db().await;
    let done_before: i64 = catalog
        .query_one(
            "SELECT count(*) FROM migration_revert_items WHERE state = 'succeeded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut reverted_before = 0_i64;
    for (_, db) in &tenants {
        if tenant_state(&app, db).await.2 == 1 {
            reverted_before += 1;
        }
    }

    // A restart: the new process's first reconciler pass takes the dead
    // CLI's operation over (its owner's lease ended with it).
    let _restarted = app_on(&extra, v2.path(), catalog_name).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let state: Option<String> = catalog
            .query_opt(
                "SELECT state FROM operations WHERE kind = 'fleet_revert'",
                &[],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        if state.as_deref() == Some("succeeded") {
            break;
        }
        if state.as_deref() == Some("failed") {
            let error: Option<String> = catalog
                .query_one(
                    "SELECT error FROM operations WHERE kind = 'fleet_revert'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            panic!("the revert taken over failed: {error:?}");
        }
        assert!(
            Instant::now() < deadline,
            "the revert was not taken over: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts: Vec<(String, i64)> = catalog
        .query(
            "SELECT state, count(*) FROM migration_revert_items GROUP BY state",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(counts, [("succeeded".to_string(), 6)]);
    for (id, db) in &tenants {
        assert_eq!(
            tenant_state(&app, db).await,
            (1, false, 1),
            "{db}: reverted exactly once"
        );
        assert_eq!(recorded_version(&app, id).await, 1);
    }
    (done_before, reverted_before)
}
