//! Backups as a service against a real S3-compatible server: taken and
//! restored over the API as operations, encrypted whole (no plaintext row
//! in the object), listed from the catalog, verified before a restore
//! touches anything, scheduled by the reconciler and pruned by retention.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app, spawn_app_with, TestApp};
use crate::kit::backups::{checksums, populated_tenant};
use crate::kit::cli::cli_env;
use crate::kit::{call, id, ok_json};

/// Takes a backup of `tenant` over the API; returns the backup as listed.
async fn back_up(app: &TestApp, tenant: &str) -> Value {
    let op = app
        .follow(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/backups"), None)
                .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "backup");
    assert!(op["progress"]["bytes"].as_i64().unwrap() > 0, "{op}");
    ok_json(
        app.admin(Method::GET, op["result"].as_str().unwrap(), None)
            .await,
        200,
    )
    .await
}

/// Agents named with a marker no archive may show in the clear.
async fn marked_agent(app: &TestApp, tenant: &Value, marker: &str) {
    let admin = app.token(Role::TenantAdmin, Some(id(tenant)), None);
    ok_json(
        call(
            app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": marker, "type": "voice" })),
        )
        .await,
        201,
    )
    .await;
}

/// The clone's rows name the clone's id where the original's named the
/// original's: written back, so the tables can be compared whole.
async fn name_original_again(app: &TestApp, clone_db: &str, clone: &str, original: &str) {
    let db = app.server.connect(clone_db).await;
    let tables = db
        .query(
            "SELECT table_name::text FROM information_schema.columns
              WHERE table_schema = 'public' AND column_name = 'tenant_id' AND data_type = 'uuid'",
            &[],
        )
        .await
        .unwrap();
    for t in tables {
        let table: String = t.get(0);
        db.execute(
            &format!("UPDATE public.\"{table}\" SET tenant_id = $2::text::uuid WHERE tenant_id = $1::text::uuid"),
            &[&clone, &original],
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_backup_in_s3_is_listed_encrypted_whole_and_restores_as_a_new_tenant_with_every_table_equal(
) {
    let s3 = crate::kit::s3::start().await;
    let app = spawn_app_with(|s| s3.configure(s, "fleet-a")).await;
    let t = app.create_tenant("in-the-bucket", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let marker = format!("MARKER-{}", uuid::Uuid::new_v4());
    marked_agent(&app, &t, &marker).await;

    let backup = back_up(&app, tid).await;
    let listed = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{tid}/backups"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(listed["backups"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["backups"][0], backup);
    for field in [
        "id",
        "created_at",
        "bytes",
        "schema_version",
        "sha256",
        "location",
    ] {
        assert!(!backup[field].is_null(), "{field} in {backup}");
    }
    assert_eq!(backup["reason"], "manual");
    let location = backup["location"].as_str().unwrap();
    assert!(location.starts_with("s3://backups/fleet-a/"), "{location}");

    // The stored object: encrypted whole, the size and digest recorded.
    let object = std::fs::read(s3.object_file(location)).unwrap();
    assert!(object.starts_with(b"age-encryption.org/v1"), "an age file");
    assert!(
        !object.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "the marker row is not in the object's bytes"
    );
    assert!(
        !object.windows(5).any(|w| w == b"PGDMP"),
        "no plaintext dump header in the object"
    );
    assert_eq!(backup["bytes"], object.len());
    assert_eq!(backup["sha256"], hex::encode(Sha256::digest(&object)));

    // Restore as a new tenant, following only the operation.
    let op = app
        .follow(
            app.admin(
                Method::POST,
                &format!(
                    "/v1/tenants/{tid}/backups/{}/restore-as-new",
                    backup["id"].as_str().unwrap()
                ),
                Some(json!({ "slug": "out-of-the-bucket" })),
            )
            .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "restore_as_new");
    let clone = ok_json(
        app.admin(Method::GET, op["result"].as_str().unwrap(), None)
            .await,
        200,
    )
    .await;
    assert_eq!(clone["slug"], "out-of-the-bucket");
    assert_eq!(clone["status"], "active");
    assert_ne!(clone["id"], t["id"]);
    let clone_db = clone["database"].as_str().unwrap();
    name_original_again(&app, clone_db, clone["id"].as_str().unwrap(), tid).await;
    let (before, after) = (
        checksums(&app.server, t["database"].as_str().unwrap()).await,
        checksums(&app.server, clone_db).await,
    );
    assert!(!before.is_empty());
    assert_eq!(before, after, "every table's checksum");
}

#[tokio::test]
async fn a_backup_restores_in_place_over_the_api_into_a_suspended_tenant() {
    let s3 = crate::kit::s3::start().await;
    let app = spawn_app_with(|s| s3.configure(s, "in-place")).await;
    let (t, _, _) = populated_tenant(&app, "put-back").await;
    let tid = t["id"].as_str().unwrap();
    let db = t["database"].as_str().unwrap();
    let original = checksums(&app.server, db).await;
    let backup = back_up(&app, tid).await;
    marked_agent(&app, &t, "written after the backup").await;
    assert_ne!(checksums(&app.server, db).await, original);
    let path = format!(
        "/v1/tenants/{tid}/backups/{}/restore",
        backup["id"].as_str().unwrap()
    );
    // An active tenant is refused at once, before any operation runs.
    let (status, code, _) = envelope(app.admin(Method::POST, &path, None).await).await;
    assert_eq!((status, code.as_str()), (409, "invalid_state"));
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let op = app.follow(app.admin(Method::POST, &path, None).await).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "restore_backup");
    assert_eq!(checksums(&app.server, db).await, original);
    assert_eq!(app.unfinished_operations().await, 0);
}

#[tokio::test]
async fn a_changed_or_foreign_object_is_refused_and_nothing_is_touched() {
    let s3 = crate::kit::s3::start().await;
    let app = spawn_app_with(|s| s3.configure(s, "guarded")).await;
    let t = app.create_tenant("guarded-bucket", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let db = t["database"].as_str().unwrap();
    let backup = back_up(&app, tid).await;
    let file = s3.object_file(backup["location"].as_str().unwrap());
    let good = std::fs::read(&file).unwrap();
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let before = checksums(&app.server, db).await;
    let path = format!(
        "/v1/tenants/{tid}/backups/{}/restore",
        backup["id"].as_str().unwrap()
    );
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    for bad in [flipped, good[..good.len() / 2].to_vec()] {
        std::fs::write(&file, &bad).unwrap();
        let op = app.follow(app.admin(Method::POST, &path, None).await).await;
        assert_eq!(op["state"], "failed", "{op}");
        assert_eq!(op["error"]["code"], "backup_refused", "{op}");
        assert_eq!(checksums(&app.server, db).await, before);
    }
    // The same object is refused by an installation with another master key.
    std::fs::write(&file, &good).unwrap();
    let other = spawn_app_with(|s| {
        s3.configure(s, "guarded");
        s.master_key = Some(secrecy::SecretString::from("ee".repeat(32)));
    })
    .await;
    let foreign = other.create_tenant("foreign-bucket", json!({})).await;
    let err = other
        .state()
        .await
        .tenants()
        .fetch_backup(&tenant_plane::catalog::BackupRecord {
            tenant_id: foreign["id"].as_str().unwrap().parse().unwrap(),
            ..serde_json::from_value::<BackupShape>(backup.clone())
                .unwrap()
                .into_record()
        })
        .await
        .err()
        .expect("another installation's object is refused");
    assert!(err.to_string().contains("master key"), "{err}");
    // The good object still restores.
    let op = app.follow(app.admin(Method::POST, &path, None).await).await;
    assert_eq!(op["state"], "succeeded", "{op}");
}

/// A listed backup read back into the library's record.
#[derive(serde::Deserialize)]
struct BackupShape {
    id: uuid::Uuid,
    tenant_id: String,
    location: String,
    bytes: i64,
    sha256: String,
    schema_version: i32,
}

impl BackupShape {
    fn into_record(self) -> tenant_plane::catalog::BackupRecord {
        tenant_plane::catalog::BackupRecord {
            id: self.id,
            tenant_id: self.tenant_id.parse().unwrap(),
            operation_id: None,
            location: self.location,
            bytes: self.bytes,
            sha256: self.sha256,
            schema_version: self.schema_version,
            reason: tenant_plane::catalog::BackupReason::Manual,
            created_at: chrono::Utc::now(),
        }
    }
}

#[tokio::test]
async fn the_reconciler_backs_up_due_tenants_and_retention_prunes_the_bucket() {
    let s3 = crate::kit::s3::start().await;
    let app = spawn_app_with(|s| {
        s3.configure(s, "scheduled");
        s.backup.keep_daily = 1;
        s.backup.keep_weekly = 0;
    })
    .await;
    let a = app.create_tenant("scheduled-a", json!({})).await;
    let b = app.create_tenant("scheduled-b", json!({})).await;
    let state = app.state().await;
    let pass = state.reconciler().run_backups_once().await.unwrap();
    let mut backed_up: Vec<String> = pass.backed_up.iter().map(|t| t.to_string()).collect();
    backed_up.sort();
    let mut want = vec![
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(backed_up, want, "{pass:?}");
    // Nothing is due again so soon.
    let again = state.reconciler().run_backups_once().await.unwrap();
    assert!(again.backed_up.is_empty(), "{again:?}");
    // Two more of a: retention keeps one a day, the newest.
    let aid = a["id"].as_str().unwrap();
    back_up(&app, aid).await;
    let newest = back_up(&app, aid).await;
    assert_eq!(s3.objects().len(), 4);
    let pruned = state.reconciler().run_backups_once().await.unwrap();
    assert_eq!(pruned.backups_pruned, 2, "{pruned:?}");
    let listed = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{aid}/backups"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(listed["backups"], json!([newest]));
    assert_eq!(
        s3.objects().len(),
        2,
        "the pruned objects are gone from the bucket"
    );
}

#[tokio::test]
async fn without_a_backup_location_a_backup_is_refused_with_a_clear_error() {
    let app = spawn_app().await;
    let t = app.create_tenant("nowhere-to-go", json!({})).await;
    let (status, code, message) = envelope(
        app.admin(
            Method::POST,
            &format!("/v1/tenants/{}/backups", t["id"].as_str().unwrap()),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "no_backup_location"));
    assert!(message.contains("backup.location"), "{message}");
}

#[tokio::test]
async fn the_cli_backs_up_into_the_location_and_restores_a_backup_by_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let location = format!("file://{}", dir.path().display());
    let app = spawn_app_with(|s| s.backup.location = Some(location.clone())).await;
    let (t, _, _) = populated_tenant(&app, "by-the-cli").await;
    let tid = t["id"].as_str().unwrap();
    let db = t["database"].as_str().unwrap();
    let original = checksums(&app.server, db).await;
    let env = [("TENANT_PLANE_BACKUP_LOCATION", location.as_str())];
    let (code, out, err) = cli_env(&app, &["backup", "--tenant", tid], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    let listed = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{tid}/backups"), None)
            .await,
        200,
    )
    .await;
    let backup = listed["backups"][0]["id"].as_str().unwrap().to_string();
    assert!(out.contains(&backup), "the CLI names the backup: {out}");
    marked_agent(&app, &t, "after the cli backup").await;
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let (code, out, err) = cli_env(&app, &["restore", "--backup", &backup], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(checksums(&app.server, db).await, original);
}
