//! Checksums across the fleet: a tenant migration, once applied anywhere,
//! may not change under its version, in this build or another's.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, MASTER_KEY};
use crate::kit::expect_error;
use crate::kit::migrations::{app_on, migrations_dir, server_of_its_own};

const V2: &str = "ALTER TABLE agents ADD COLUMN language text;";
const V2_EDITED: &str = "ALTER TABLE agents ADD COLUMN language varchar(8);";

/// `tenant-plane tenant list` on `catalog`, with `dir` as the tenant
/// migrations, as an operator runs it: (exit code, stderr).
async fn list_tenants_with(url: &str, dir: &std::path::Path) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"))
        .args(["tenant", "list"])
        .env("TENANT_PLANE_DATABASE_URL", url)
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_MIGRATIONS_TENANT_DIR", dir)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn a_migrations_folder_whose_applied_version_was_edited_is_refused_at_start_up_naming_the_version(
) {
    let extra = server_of_its_own().await;
    let applied = migrations_dir(&[("V2__agent_language", V2)]);
    let app = app_on(&extra, applied.path(), "checksums_catalog").await;
    let recorded = app
        .catalog_count("SELECT count(*) FROM tenant_migration_checksums WHERE version IN (1, 2)")
        .await;
    assert_eq!(
        recorded, 2,
        "both versions recorded once the template held them"
    );
    let url =
        secrecy::ExposeSecret::expose_secret(&extra.server.url("checksums_catalog")).to_string();

    // The same files start; V2 edited in place is refused, by name.
    let (code, stderr) = list_tenants_with(&url, applied.path()).await;
    assert_eq!(code, 0, "{stderr}");
    let edited = migrations_dir(&[("V2__agent_language", V2_EDITED)]);
    let (code, stderr) = list_tenants_with(&url, edited.path()).await;
    assert_ne!(code, 0, "an edited applied migration started: {stderr}");
    assert!(stderr.contains("V2__agent_language"), "{stderr}");
    assert!(stderr.contains("differs"), "{stderr}");
    // The first applied stays the record.
    let kept = app
        .catalog_count("SELECT count(*) FROM tenant_migration_checksums WHERE version = 2")
        .await;
    assert_eq!(kept, 1);
}

#[tokio::test]
async fn a_fleet_run_is_refused_with_409_when_another_build_applied_a_different_file_under_one_of_our_versions(
) {
    let app = spawn_app().await;
    // Another build, started after this one, recorded its own V1.
    app.catalog_db()
        .await
        .execute(
            "UPDATE tenant_migration_checksums SET checksum = '0123456789abcdef' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let message = expect_error(
        app.admin(Method::POST, "/v1/migrations/runs", Some(json!({})))
            .await,
        409,
        "migration_checksum_mismatch",
    )
    .await;
    assert!(message.contains("V1__"), "{message}");
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM migration_runs")
            .await,
        0
    );
}
