//! Migrations driven by an operator: the CLI's canary stop, and one tenant
//! migrated on request.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{envelope, MASTER_KEY};
use crate::kit::migrations::{
    add_agent, app_on, create_tenants, has_v2, migrations_dir, server_of_its_own, V2_FRAGILE,
};

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
    assert_eq!((status, code.as_str()), (422, "invalid_body"));
}
