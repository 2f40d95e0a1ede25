//! Drift and migrations: a fleet run skips the tenants a scan found
//! drifted, recording why, and migrates the rest; `allow_drift` migrates
//! them; a one-tenant migration of a drifted tenant answers 409
//! `tenant_drifted`; once migrated, the tenant's record is stale, not in sync.

use reqwest::Method;
use serde_json::json;

use crate::kit::drift::{by_hand, scan, tenant_drift};
use crate::kit::expect::expect_error;
use crate::kit::migrations::{
    app_on, create_tenants, has_v2, migrations_dir, server_of_its_own, V2_FRAGILE,
};
use crate::kit::ok_json;

#[tokio::test]
async fn a_fleet_run_skips_drifted_tenants_with_the_reason_and_allow_drift_migrates_them() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "drift_fleet").await;
    let tenants = create_tenants(&before, 4).await;
    let (one, two) = (&tenants[1], &tenants[2]);
    by_hand(
        &before,
        &one.1,
        "CREATE INDEX agents_by_hand_idx ON agents (name)",
    )
    .await;
    by_hand(&before, &two.1, "ALTER TABLE calls ADD COLUMN notes text").await;
    assert_eq!(scan(&before).await["scan"]["drifted"], 2);

    // A new deploy with V2; its run leaves the drifted tenants alone.
    let app = app_on(&extra, v2.path(), "drift_fleet").await;
    let summary = ok_json(
        app.admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({ "concurrency": 2, "canary": 0 })),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(summary["run"]["state"], "succeeded", "{summary}");
    assert_eq!(summary["run"]["allow_drift"], false, "{summary}");
    assert_eq!(
        (
            summary["counts"]["succeeded"].as_i64(),
            summary["counts"]["skipped"].as_i64()
        ),
        (Some(2), Some(2)),
        "{summary}"
    );
    let items = app
        .catalog_db()
        .await
        .query(
            "SELECT tenant_id::text, state, error FROM migration_items WHERE run_id = $1::text::uuid",
            &[&summary["run"]["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    for item in &items {
        let (tenant, state, error): (String, String, Option<String>) =
            (item.get(0), item.get(1), item.get(2));
        let drifted = tenant == one.0 || tenant == two.0;
        let db = &tenants.iter().find(|t| t.0 == tenant).unwrap().1;
        if drifted {
            assert_eq!(state, "skipped");
            let reason = error.unwrap_or_default();
            assert!(reason.starts_with("drifted at "), "{reason}");
            assert!(reason.contains("allow_drift"), "{reason}");
            assert_eq!(has_v2(&app, db).await, (false, 0), "{db}");
        } else {
            assert_eq!(state, "succeeded", "{error:?}");
            assert_eq!(has_v2(&app, db).await, (true, 1), "{db}");
        }
    }

    // One tenant on request: refused while drifted, unless allowed.
    let path = format!("/v1/tenants/{}/migrations", one.0);
    let message = expect_error(
        app.admin(Method::POST, &path, Some(json!({}))).await,
        409,
        "tenant_drifted",
    )
    .await;
    assert!(message.contains("drifted"), "{message}");
    assert_eq!(has_v2(&app, &one.1).await, (false, 0));
    let migrated = ok_json(
        app.admin(Method::POST, &path, Some(json!({ "allow_drift": true })))
            .await,
        200,
    )
    .await;
    assert_eq!(migrated["to_version"], 2, "{migrated}");

    // The next run, with allow_drift, takes the other drifted tenant.
    let allowed = ok_json(
        app.admin(
            Method::POST,
            "/v1/migrations/runs?wait=true",
            Some(json!({ "concurrency": 2, "canary": 0, "allow_drift": true })),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(allowed["run"]["allow_drift"], true, "{allowed}");
    assert_eq!(allowed["counts"]["succeeded"], 1, "{allowed}");
    assert_eq!(has_v2(&app, &two.1).await, (true, 1));

    // Their records were about version 1: stale now, shown unknown.
    for (id, _) in [one, two] {
        let record = tenant_drift(&app, id).await;
        assert_eq!(record["state"], "unknown", "{record}");
        assert_eq!(record["stale"], true, "{record}");
        assert_eq!(
            (
                record["checked_version"].as_i64(),
                record["schema_version"].as_i64()
            ),
            (Some(1), Some(2))
        );
    }
    let fleet = ok_json(
        app.admin(Method::GET, "/v1/migrations/drift", None).await,
        200,
    )
    .await;
    assert_eq!(fleet["drifted"], json!([]), "{fleet}");
}
