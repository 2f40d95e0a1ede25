//! A long operation that fails records the code the API answers with for
//! that failure, in the same write as its `failed` state, whether the CLI or
//! the API started it. Each test fails one kind of operation for a real
//! cause, once over HTTP and once through the `tenant-plane` binary. A
//! trigger of the test's own on the catalog keeps the code of every row
//! version that turned `failed`, so a code written after the state shows
//! as missing.

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};
use crate::kit::cli::cli_env;
use crate::kit::migrations::{add_agent, app_on, migrations_dir, server_of_its_own, V2_FRAGILE};
use crate::kit::ok_json;
use crate::kit::servers::{catalog_server_id, register, set_server_state};

const WATCH: &str = "
CREATE TABLE test_failed_rows (at bigserial, id uuid, kind text, code text);
CREATE FUNCTION test_failed_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'failed' AND (TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM 'failed') THEN
        INSERT INTO test_failed_rows (id, kind, code) VALUES (NEW.id, NEW.kind, NEW.error_code);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER test_failed_rows AFTER INSERT OR UPDATE ON operations
    FOR EACH ROW EXECUTE FUNCTION test_failed_row();";

async fn watch(app: &TestApp) {
    app.catalog_db().await.batch_execute(WATCH).await.unwrap();
}

/// The code of each row version of `kind` that turned `failed`, oldest first.
async fn failed_codes(app: &TestApp, kind: &str) -> Vec<Option<String>> {
    app.catalog_db()
        .await
        .query(
            "SELECT code FROM test_failed_rows WHERE kind = $1 ORDER BY at",
            &[&kind],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Runs the CLI, as an operator would; returns what it printed.
async fn run_cli(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, out, err) = cli_env(app, args, env).await;
    format!("exit {code}: {out}{err}")
}

/// The operation the API started (`api`) and the one the CLI started
/// after it (`cli` is its output) both failed with `code`, recorded with
/// their `failed` state; the API shows the CLI's with that code too.
async fn same_code(app: &TestApp, kind: &str, api: &Value, cli: &str, code: &str) {
    assert_eq!(api["state"], "failed", "{api}");
    assert_eq!(api["error"]["code"], code, "{api}");
    let recorded = failed_codes(app, kind).await;
    assert_eq!(
        recorded,
        vec![Some(code.to_string()), Some(code.to_string())],
        "the API's, then the CLI's ({cli})"
    );
    let failed = ok_json(
        app.admin(
            Method::GET,
            &format!("/v1/operations?kind={kind}&state=failed"),
            None,
        )
        .await,
        200,
    )
    .await;
    let newest = &failed["operations"][0];
    assert_ne!(newest["id"], api["id"], "the CLI's operation: {cli}");
    assert_eq!(newest["error"]["code"], code, "{newest}");
}

async fn app_with_location() -> (TestApp, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let location = format!("file://{}", dir.path().display());
    let app = spawn_app_with(|s| s.backup.location = Some(location.clone())).await;
    watch(&app).await;
    (app, dir, location)
}

/// A tenant and one backup of it in the location; returns their ids.
async fn backed_up(app: &TestApp, slug: &str) -> (String, String) {
    let t = app.create_tenant(slug, json!({})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    let op = app
        .follow(
            app.admin(Method::POST, &format!("/v1/tenants/{tid}/backups"), None)
                .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let backup = op["result"].as_str().unwrap().rsplit('/').next().unwrap();
    (tid, backup.to_string())
}

/// Every object in the backup location replaced by bytes that are no archive.
fn spoil(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            spoil(&path);
        } else {
            std::fs::write(&path, b"not an archive").unwrap();
        }
    }
}

/// Its database refuses every connection, pg_dump's included.
async fn refuse_connections(app: &TestApp, db: &str) {
    app.server
        .connect("postgres")
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_drain_with_nowhere_to_go_fails_with_the_same_code_from_the_cli_and_the_api() {
    let app = spawn_app_with(|_| {}).await;
    watch(&app).await;
    app.create_tenant("drain-codes", json!({})).await;
    let server = catalog_server_id(&app).await;
    let path = format!("/v1/servers/{server}/drain");
    let api = app.follow(app.admin(Method::POST, &path, None).await).await;
    set_server_state(&app, &server, "active").await;
    let cli = run_cli(&app, &["server", "drain", &server], &[]).await;
    set_server_state(&app, &server, "active").await;
    same_code(&app, "drain", &api, &cli, "no_server_available").await;
}

#[tokio::test]
async fn a_backup_whose_dump_fails_fails_with_the_same_code_from_the_cli_and_the_api() {
    let (app, _dir, location) = app_with_location().await;
    let t = app.create_tenant("backup-codes", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    refuse_connections(&app, t["database"].as_str().unwrap()).await;
    let path = format!("/v1/tenants/{tid}/backups");
    let api = app.follow(app.admin(Method::POST, &path, None).await).await;
    let env = [("TENANT_PLANE_BACKUP_LOCATION", location.as_str())];
    let cli = run_cli(&app, &["backup", "--tenant", tid], &env).await;
    same_code(&app, "backup", &api, &cli, "backup_failed").await;
}

#[tokio::test]
async fn a_purge_whose_final_backup_fails_fails_with_the_same_code_from_the_cli_and_the_api() {
    let (app, _dir, location) = app_with_location().await;
    let t = app.create_tenant("purge-codes", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let deleted = app
        .admin(Method::DELETE, &format!("/v1/tenants/{tid}"), None)
        .await;
    ok_json(deleted, 200).await;
    refuse_connections(&app, t["database"].as_str().unwrap()).await;
    let path = format!("/v1/tenants/{tid}?purge=true");
    let api = app
        .follow(app.admin(Method::DELETE, &path, None).await)
        .await;
    let env = [("TENANT_PLANE_BACKUP_LOCATION", location.as_str())];
    let cli = run_cli(&app, &["tenant", "delete", tid, "--purge"], &env).await;
    let code = api["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(code, "operation_failed", "{api}");
    same_code(&app, "purge", &api, &cli, &code).await;
}

#[tokio::test]
async fn a_refused_restore_fails_with_the_same_code_from_the_cli_and_the_api() {
    let (app, dir, location) = app_with_location().await;
    let (tid, backup) = backed_up(&app, "restore-codes").await;
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/suspend"), None)
            .await,
        200,
    )
    .await;
    spoil(dir.path());
    let path = format!("/v1/tenants/{tid}/backups/{backup}/restore");
    let api = app.follow(app.admin(Method::POST, &path, None).await).await;
    let env = [("TENANT_PLANE_BACKUP_LOCATION", location.as_str())];
    let cli = run_cli(&app, &["restore", "--backup", &backup], &env).await;
    same_code(&app, "restore_backup", &api, &cli, "backup_refused").await;
}

#[tokio::test]
async fn a_refused_restore_as_new_fails_with_the_same_code_from_the_cli_and_the_api() {
    let (app, dir, location) = app_with_location().await;
    let (tid, backup) = backed_up(&app, "clone-codes").await;
    spoil(dir.path());
    let path = format!("/v1/tenants/{tid}/backups/{backup}/restore-as-new");
    let body = json!({ "slug": "clone-codes-api" });
    let api = app
        .follow(app.admin(Method::POST, &path, Some(body)).await)
        .await;
    let env = [("TENANT_PLANE_BACKUP_LOCATION", location.as_str())];
    let args = [
        "restore",
        "--backup",
        &backup,
        "--as-new",
        "--slug",
        "clone-codes-cli",
    ];
    let cli = run_cli(&app, &args, &env).await;
    same_code(&app, "restore_as_new", &api, &cli, "backup_refused").await;
}

#[tokio::test]
async fn a_move_whose_copy_fails_fails_with_the_same_code_from_the_cli_and_the_api() {
    let extra = server_of_its_own().await;
    let app = spawn_app_with(|_| {}).await;
    watch(&app).await;
    // Created before the target is registered: on the catalog's server.
    let t = app.create_tenant("move-codes", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let target = register(&app, "pg-codes", &extra, json!([])).await;
    let target = target["id"].as_str().unwrap();
    refuse_connections(&app, t["database"].as_str().unwrap()).await;
    let path = format!("/v1/tenants/{tid}/move");
    let body = json!({ "server": target });
    let api = app
        .follow(app.admin(Method::POST, &path, Some(body)).await)
        .await;
    let cli = run_cli(&app, &["tenant", "move", tid, "--server", target], &[]).await;
    let code = api["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(code, "operation_failed", "{api}");
    same_code(&app, "move", &api, &cli, &code).await;
}

#[tokio::test]
async fn a_fleet_run_whose_tenant_fails_fails_with_the_same_code_from_the_cli_and_the_api() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[("V2__agent_language", V2_FRAGILE)]);
    let before = app_on(&extra, v1.path(), "codes_catalog").await;
    let (_, db) = before.create_tenant_named("fleet-codes").await;
    add_agent(&before, &db, "An agent whose name is much too long").await;
    let app = app_on(&extra, v2.path(), "codes_catalog").await;
    watch(&app).await;
    let started = app
        .admin(Method::POST, "/v1/migrations/runs", Some(json!({})))
        .await;
    let api = app.follow(started).await;
    let dir = v2.path().to_str().unwrap();
    let env = [("TENANT_PLANE_MIGRATIONS_TENANT_DIR", dir)];
    let cli = run_cli(&app, &["migrate", "--all"], &env).await;
    let code = api["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(code, "operation_failed", "{api}");
    same_code(&app, "fleet_run", &api, &cli, &code).await;
    // Each run's failed tenant, too.
    let items = failed_codes(&app, "migrate").await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items
        .iter()
        .all(|c| c.as_deref() == Some("tenant_migrations_failed")));
}
