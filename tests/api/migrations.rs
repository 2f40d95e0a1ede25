//! Fleet and single-tenant migrations. Each test has a database server of its
//! own: it moves the server's template to a schema version the other tests
//! do not have.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use tenant_plane::fleet::FleetOptions;

use crate::kit::migrations::{
    add_agent, app_on, create_tenants, has_v2, migrations_dir, server_of_its_own, V2_FRAGILE,
};

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
    let progress = Arc::new(move |p: tenant_plane::fleet::Progress| {
        if p.succeeded >= 10 {
            notify.notify_one();
        }
    });
    tokio::select! {
        _ = fleet.execute_run(run.id, progress) => panic!("the run finished before it was killed"),
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

    // The dropped runner's operation was released: the reconciler takes it
    // over and runs what is left.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state: Option<String> = catalog
            .query_opt(
                "SELECT state FROM operations WHERE kind = 'fleet_run' AND params ->> 'subject' = $1::uuid::text",
                &[&run.id],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        if state.as_deref() == Some("succeeded") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run was not taken over: {state:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let summary = fleet.summary(run.id).await.unwrap();
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
