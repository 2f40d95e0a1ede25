//! Backups an operator can trust in a disaster and in an audit: the age
//! identity needs the master key alone, issuing power leaves a trace, a
//! failed dump tells the API nothing internal, and an archive newer than
//! this build is refused before anything changes.

use std::str::FromStr;

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::backup::{read_archive, write_archive};
use tenant_plane::domain::TenantId;

use crate::helpers::{envelope, spawn_app, spawn_app_with, TestApp, JWT_SECRET, MASTER_KEY};
use crate::kit::backups::{checksums, master_key, populated_tenant};
use crate::kit::binary::{command, run};
use crate::kit::cli::{cli, cli_env};
use crate::kit::ok_json;

/// An app whose backup location is a fresh folder (kept with the app).
async fn app_with_location() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let location = format!("file://{}", dir.path().display());
    (
        spawn_app_with(|s| s.backup.location = Some(location)).await,
        dir,
    )
}

/// The newest control-plane audit events, as the API lists them.
async fn fleet_audit(app: &TestApp) -> Vec<Value> {
    let page = ok_json(
        app.admin(Method::GET, "/v1/fleet/audit?limit=100", None)
            .await,
        200,
    )
    .await;
    page["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_age_identity_is_printed_from_the_master_key_alone_with_the_catalog_unreachable_and_decrypts_an_archive(
) {
    let app = spawn_app().await;
    let t = app.create_tenant("lost-catalog", json!({})).await;
    let tid: TenantId = t["id"].as_str().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("lost.tpbackup");
    app.state()
        .await
        .tenants()
        .backup(tid, &archive)
        .await
        .unwrap();

    // The catalog is gone: nothing listens on port 1.
    let (code, stdout, stderr) = run(command()
        .args(["backup", "--print-age-identity"])
        .env(
            "TENANT_PLANE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/tenant_plane",
        )
        .env("TENANT_PLANE_CATALOG_CONNECT_TIMEOUT_SECS", "2")
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY))
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("not audited"),
        "the operator is told: {stderr}"
    );
    let identity = age::x25519::Identity::from_str(stdout.trim()).expect("an age identity");

    // The stock age decryption with that identity alone opens the archive.
    let decryptor = age::Decryptor::new(std::fs::File::open(&archive).unwrap()).unwrap();
    let plain = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .expect("the printed identity decrypts the archive");
    let mut tar = tar::Archive::new(plain);
    let mut names = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        names.push(entry.path().unwrap().to_string_lossy().to_string());
        std::io::copy(&mut entry, &mut std::io::sink()).unwrap();
    }
    assert!(names.contains(&"manifest.json".to_string()), "{names:?}");
    assert!(names.contains(&"database.dump".to_string()), "{names:?}");
}

#[tokio::test]
async fn issuing_a_token_and_printing_the_age_identity_are_audited_without_the_token() {
    let app = spawn_app().await;
    let t = app.create_tenant("audited-power", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let secret = [("TENANT_PLANE_JWT_SECRET", JWT_SECRET)];

    let (code, super_token, stderr) = cli_env(
        &app,
        &[
            "token",
            "--role",
            "super_admin",
            "--sub",
            "ops-root",
            "--ttl",
            "15m",
        ],
        &secret,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("not audited"), "{stderr}");
    let (code, tenant_token, stderr) = cli_env(
        &app,
        &[
            "token",
            "--role",
            "tenant_admin",
            "--tenant",
            tid,
            "--sub",
            "ops-acme",
        ],
        &secret,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, identity, stderr) = cli(&app, &["backup", "--print-age-identity"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("not audited"), "{stderr}");

    let events = fleet_audit(&app).await;
    let all = serde_json::to_string(&events).unwrap();
    for secret in [super_token.trim(), tenant_token.trim(), identity.trim()] {
        assert!(!all.contains(secret), "the audit holds no secret: {all}");
    }
    let of = |action: &str, needle: &str| {
        events
            .iter()
            .find(|e| e["action"] == action && e["resource"].as_str().unwrap().contains(needle))
            .cloned()
            .unwrap_or_else(|| panic!("no {action} event with {needle}: {all}"))
    };
    let root = of("tokens.issue", "tokens/ops-root");
    let resource = root["resource"].as_str().unwrap();
    assert!(resource.contains("role=super_admin"), "{resource}");
    assert!(resource.contains("ttl_secs=900"), "{resource}");
    assert!(root["tenant_id"].is_null(), "{root}");
    assert!(
        root["user_id"].as_str().unwrap().starts_with("cli:"),
        "{root}"
    );
    assert_eq!(root["result"], "success");
    let acme = of("tokens.issue", "tokens/ops-acme");
    assert!(acme["resource"]
        .as_str()
        .unwrap()
        .contains("role=tenant_admin"));
    assert!(acme["resource"].as_str().unwrap().contains("ttl_secs=3600"));
    assert_eq!(acme["tenant_id"], tid);
    let printed = of("backup.print_age_identity", "age_identity");
    assert!(printed["user_id"].as_str().unwrap().starts_with("cli:"));
}

#[tokio::test]
async fn a_dump_that_fails_tells_the_operation_and_its_event_nothing_of_pg_dumps_own_words() {
    let (app, _location) = app_with_location().await;
    let t = app.create_tenant("broken-dump", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let db = t["database"].as_str().unwrap().to_string();
    // The database goes behind the service's back: pg_dump cannot connect.
    app.server
        .connect("postgres")
        .await
        .batch_execute(&format!("DROP DATABASE \"{db}\" WITH (FORCE)"))
        .await
        .unwrap();

    let op = app
        .follow(
            app.admin(Method::POST, &format!("/v1/tenants/{tid}/backups"), None)
                .await,
        )
        .await;
    assert_eq!(op["state"], "failed", "{op}");
    let message = op["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("pg_dump failed (exit 1"), "{message}");
    let event_rows = app
        .catalog_db()
        .await
        .query(
            "SELECT data::text FROM events WHERE operation_id = $1",
            &[&uuid::Uuid::parse_str(op["id"].as_str().unwrap()).unwrap()],
        )
        .await
        .unwrap();
    let events: Vec<String> = event_rows.iter().map(|r| r.get(0)).collect();
    assert!(
        events.iter().any(|e| e.contains("pg_dump failed")),
        "{events:?}"
    );
    let op_text = op.to_string();
    for shown in events.iter().chain(std::iter::once(&op_text)) {
        for leak in ["pg_dump:", "127.0.0.1", "does not exist", "FATAL", &db, "/"] {
            let leaked = if leak == "/" {
                // A path, not the operation's own link.
                shown.contains("/usr/") || shown.contains("/tmp/")
            } else {
                shown.contains(leak)
            };
            assert!(!leaked, "{leak:?} reached {shown}");
        }
    }
}

/// A backup of `tid` written by this installation (sealed with its key)
/// that says it is at schema version `version`.
fn archive_at_version(good: &std::path::Path, out: &std::path::Path, version: i32) {
    let archive = read_archive(good, &master_key()).unwrap();
    let mut manifest = archive.manifest.clone();
    manifest.schema_version = version;
    let mut document = archive.document.clone();
    document.tenant.schema_version = version;
    write_archive(out, &master_key(), manifest, &document, &archive.dump).unwrap();
    assert_eq!(
        read_archive(out, &master_key())
            .unwrap()
            .manifest
            .schema_version,
        version
    );
}

#[tokio::test]
async fn an_archive_from_a_newer_schema_than_this_build_knows_is_refused_and_changes_nothing() {
    let (app, _location) = app_with_location().await;
    let (t, _, _) = populated_tenant(&app, "from-the-future").await;
    let tid = t["id"].as_str().unwrap().to_string();
    let db = t["database"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tpbackup");
    let state = app.state().await;
    state
        .tenants()
        .backup(tid.parse().unwrap(), &good)
        .await
        .unwrap();
    let future = dir.path().join("future.tpbackup");
    archive_at_version(&good, &future, 9999);
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    let before = checksums(&app.server, &db).await;
    let count = |sql: &'static str| {
        let app = &app;
        async move { app.catalog_count(sql).await }
    };
    let tenants_before = count("SELECT count(*) FROM tenants").await;
    let ops_before = count("SELECT count(*) FROM operations").await;

    // The CLI, in place and as a new tenant.
    for extra in [&[][..], &["--as-new", "--slug", "from-future-clone"][..]] {
        let mut args = vec!["restore", "--file", future.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, _, err) = cli(&app, &args).await;
        assert_ne!(code, 0);
        assert!(
            err.contains("schema version 9999") && err.contains("newer than this build"),
            "{err}"
        );
    }

    // The API: a kept backup whose record says it is too new.
    let op = app
        .follow(
            app.admin(Method::POST, &format!("/v1/tenants/{tid}/backups"), None)
                .await,
        )
        .await;
    let backup: Value = ok_json(
        app.admin(Method::GET, op["result"].as_str().unwrap(), None)
            .await,
        200,
    )
    .await;
    let backup_id = backup["id"].as_str().unwrap().to_string();
    app.catalog_db()
        .await
        .execute(
            "UPDATE backups SET schema_version = 9999 WHERE id = $1",
            &[&uuid::Uuid::parse_str(&backup_id).unwrap()],
        )
        .await
        .unwrap();
    let ops_before = ops_before + 1;
    for (path, body) in [
        (
            format!("/v1/tenants/{tid}/backups/{backup_id}/restore"),
            None,
        ),
        (
            format!("/v1/tenants/{tid}/backups/{backup_id}/restore-as-new"),
            Some(json!({ "slug": "from-future-api" })),
        ),
    ] {
        let (status, code, message) = envelope(app.admin(Method::POST, &path, body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (409, "archive_too_new"),
            "{message}"
        );
        assert!(message.contains("9999"), "{message}");
    }

    assert_eq!(checksums(&app.server, &db).await, before);
    assert_eq!(count("SELECT count(*) FROM tenants").await, tenants_before);
    assert_eq!(count("SELECT count(*) FROM operations").await, ops_before);
    let view = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{tid}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(view["status"], "suspended");
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM tenants WHERE slug LIKE 'from-future-%'")
            .await,
        0
    );
}
