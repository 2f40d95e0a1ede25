//! Backup and restore of one tenant: a round trip through the CLI, a clone,
//! an archive from an older schema, and the cron script (refusals:
//! `restore_refusals.rs`).

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::backup::read_archive;
use tenant_plane::domain::{Slug, TenantId};
use tenant_plane::tenants::RestoreTarget;

use crate::helpers::{spawn_app, MASTER_KEY};
use crate::kit::backups::{checksums, master_key, populated_tenant};
use crate::kit::cli::cli;
use crate::kit::migrations::{app_on, migrations_dir, server_of_its_own};
use crate::kit::{call, id, ok_json};

#[tokio::test]
async fn a_backup_restored_through_the_cli_brings_back_identical_tables_and_settings() {
    let app = spawn_app().await;
    let (t, _, agent) = populated_tenant(&app, "round-trip").await;
    let tid = t["id"].as_str().unwrap();
    let db = t["database"].as_str().unwrap();
    let original = checksums(&app.server, db).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("round-trip.tpbackup");
    let (code, out, err) = cli(
        &app,
        &["backup", "--tenant", tid, "--out", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("database.dump  sha256 "), "{out}");
    // Things go wrong after the backup: rows lost, a setting changed.
    app.server
        .connect(db)
        .await
        .batch_execute("DELETE FROM calls; UPDATE agents SET name = 'changed'")
        .await
        .unwrap();
    ok_json(
        app.admin(
            Method::PATCH,
            &format!("/v1/tenants/{tid}"),
            Some(json!({ "settings": { "branding": { "primaryColor": "#445566" } } })),
        )
        .await,
        200,
    )
    .await;
    assert_ne!(checksums(&app.server, db).await, original);
    // An active tenant is not overwritten.
    let (code, _, err) = cli(&app, &["restore", "--file", file.to_str().unwrap()]).await;
    assert_ne!(code, 0);
    assert!(err.contains("suspend or delete it first"), "{err}");
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let (code, out, err) = cli(&app, &["restore", "--file", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(checksums(&app.server, db).await, original);
    let view = ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/resume"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(
        view["settings"]["branding"]["primaryColor"], "#112233",
        "{view}"
    );
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let got = ok_json(
        call(
            &app,
            Method::GET,
            &format!("/v1/agents/{agent}"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(got["name"], "a1");
    assert_eq!(app.unfinished_operations().await, 0);
}

#[tokio::test]
async fn a_restore_as_a_new_tenant_is_a_clone_while_the_original_stays_live_and_isolated() {
    let app = spawn_app().await;
    let (t, sub, agent) = populated_tenant(&app, "original").await;
    let tid: TenantId = t["id"].as_str().unwrap().parse().unwrap();
    let state = app.state().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("original.tpbackup");
    state.tenants().backup(tid, &file).await.unwrap();
    let archive = read_archive(&file, &master_key()).unwrap();
    let report = state
        .tenants()
        .restore_backup(
            &archive,
            RestoreTarget::AsNew {
                slug: Slug::parse("the-clone").unwrap(),
            },
        )
        .await
        .unwrap();
    let clone = report.tenant;
    assert_ne!(clone.id, tid);
    assert_eq!(clone.status.as_str(), "active");
    let clone_db = clone.database.clone().unwrap();
    // Same rows, table by table (the ids that name the tenant are rewritten).
    let (before, after) = (
        checksums(&app.server, t["database"].as_str().unwrap()).await,
        checksums(&app.server, &clone_db).await,
    );
    for (table, sum) in &before {
        assert_eq!(sum.rows, after[table].rows, "{table}");
    }
    // The clone's subtenant has a new id, and its rows follow it.
    let clone_subs = state
        .services()
        .catalog
        .subtenants_of(clone.id)
        .await
        .unwrap();
    assert_eq!(clone_subs.len(), 1);
    let clone_sub = clone_subs[0].id;
    assert_ne!(clone_sub.to_string(), sub);
    let moved: i64 = app
        .server
        .connect(&clone_db)
        .await
        .query_one(
            "SELECT count(*) FROM agents WHERE subtenant_id = $1",
            &[&clone_sub.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(moved, 1);
    // Both live, each in its own database; neither token reaches the other.
    let admin = app.token(Role::TenantAdmin, Some(tid), None);
    let clone_admin = app.token(Role::TenantAdmin, Some(clone.id), None);
    ok_json(
        call(
            &app,
            Method::GET,
            &format!("/v1/agents/{agent}"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    ok_json(
        call(
            &app,
            Method::GET,
            &format!("/v1/agents/{agent}"),
            &clone_admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &clone_admin,
            None,
            Some(json!({ "name": "clone-only", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    let listed = ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
    assert!(listed["agents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["name"] != "clone-only"));
    let r = call(
        &app,
        Method::GET,
        "/v1/agents",
        &admin,
        Some(&clone.id.to_string()),
        None,
    )
    .await;
    assert_eq!(r.status(), 403);
}

/// Rewrites the archive at `from` into `to`, passing each part through `edit`.
#[tokio::test]
async fn an_archive_from_an_older_schema_is_migrated_to_the_current_one_after_restore() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let old = app_on(&extra, v1.path(), "older_catalog").await;
    let t = old.create_tenant("from-v1", json!({})).await;
    let tid: TenantId = t["id"].as_str().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v1.tpbackup");
    old.state()
        .await
        .tenants()
        .backup(tid, &file)
        .await
        .unwrap();
    // A new deploy brings V2.
    let v2 = migrations_dir(&[(
        "V2__agent_language",
        "ALTER TABLE agents ADD COLUMN language text;",
    )]);
    let new = app_on(&extra, v2.path(), "older_catalog").await;
    let archive = read_archive(&file, &master_key()).unwrap();
    assert_eq!(archive.manifest.schema_version, 1);
    let report = new
        .state()
        .await
        .tenants()
        .restore_backup(
            &archive,
            RestoreTarget::AsNew {
                slug: Slug::parse("from-v1-clone").unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!((report.from_schema_version, report.schema_version), (1, 2));
    assert_eq!(report.tenant.schema_version, 2);
    let has_column: i64 = extra
        .server
        .connect(report.tenant.database.as_deref().unwrap())
        .await
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'agents' AND column_name = 'language'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(has_column, 1);
}

#[tokio::test]
async fn the_cron_script_backs_up_every_root_tenant_and_prunes_archives_past_retention() {
    let app = spawn_app().await;
    let a = app.create_tenant("cron-a", json!({})).await;
    let b = app.create_tenant("cron-b", json!({})).await;
    app.create_subtenant(a["id"].as_str().unwrap(), "cron-a-sub")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let a_dir = dir.path().join(a["id"].as_str().unwrap());
    std::fs::create_dir_all(&a_dir).unwrap();
    let stale = a_dir.join("20000101T000000Z.tpbackup");
    let file = std::fs::File::create(&stale).unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400))
        .unwrap();
    drop(file);
    let out = tokio::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/backup-all.sh"
        ))
        .env("BACKUP_BIN", env!("CARGO_BIN_EXE_tenant-plane"))
        .env(
            "TENANT_PLANE_DATABASE_URL",
            app.server.url(&app.catalog_db).expose_secret(),
        )
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("BACKUP_DIR", dir.path())
        .env("RETENTION_DAYS", "1")
        .output()
        .await
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(!stale.exists(), "the stale archive was pruned: {log}");
    for t in [&a, &b] {
        let archives: Vec<_> = std::fs::read_dir(dir.path().join(t["id"].as_str().unwrap()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(archives.len(), 1, "{archives:?}");
        let archive = read_archive(&archives[0], &master_key()).unwrap();
        assert_eq!(
            archive.manifest.tenant_id.to_string(),
            t["id"].as_str().unwrap()
        );
    }
    // Subtenants live in their root's archive, not in one of their own.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}
