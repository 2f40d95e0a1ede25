//! Destructive paths that decide under the tenant's lock: the retention
//! purge, a failed move's write pause, and migrations against moves,
//! restores and purges.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;
use tenant_plane::domain::{DbName, TenantId};

use crate::cluster::start_extra;
use crate::helpers::{envelope, spawn_app, spawn_app_without_rate_limits};
use crate::kit::servers::{agent_for, register};
use crate::kit::{call, id, ok_json};

/// Whether the tenant's database still exists on the test server.
async fn database_exists(app: &crate::helpers::TestApp, db: &str) -> bool {
    app.server
        .connect("postgres")
        .await
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_tenant_restored_after_the_retention_listing_is_never_purged() {
    let app = spawn_app().await;
    let t = app.create_tenant("second-chance", json!({})).await;
    let (tid, db) = (id(&t), t["database"].as_str().unwrap().to_string());
    ok_json(
        app.admin(Method::DELETE, &format!("/v1/tenants/{tid}"), None)
            .await,
        200,
    )
    .await;
    // Deleted long ago: the retention listing finds it.
    app.catalog_db()
        .await
        .execute(
            "UPDATE tenants SET deleted_at = now() - interval '400 days' WHERE id = $1",
            &[&tid.as_uuid()],
        )
        .await
        .unwrap();
    let state = app.state().await;
    let listed = state
        .services()
        .catalog
        .expired_deletions(30)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    // Restored between the listing and the purge.
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/restore"), None)
            .await,
        200,
    )
    .await;
    let mut report = Default::default();
    state.reconciler().purge_expired(&listed, &mut report).await;
    assert!(report.purged.is_empty(), "{report:?}");
    assert!(
        database_exists(&app, &db).await,
        "the restored tenant kept its database"
    );
    let now = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{tid}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(now["status"], "active");
}

#[tokio::test]
async fn a_purge_of_an_active_or_suspended_tenant_is_refused_until_it_is_deleted() {
    let app = spawn_app().await;
    let t = app.create_tenant("not-yet", json!({})).await;
    let (tid, db) = (id(&t), t["database"].as_str().unwrap().to_string());
    for step in ["", "/suspend"] {
        if !step.is_empty() {
            ok_json(
                app.admin(Method::POST, &format!("/v1/tenants/{tid}{step}"), None)
                    .await,
                200,
            )
            .await;
        }
        let (status, code, _) = envelope(
            app.admin(
                Method::DELETE,
                &format!("/v1/tenants/{tid}?purge=true"),
                None,
            )
            .await,
        )
        .await;
        assert_eq!((status, code.as_str()), (409, "tenant_not_deleted"));
        assert!(database_exists(&app, &db).await);
    }
    assert_eq!(app.unfinished_operations().await, 0);
}

#[tokio::test]
async fn a_purge_keeps_a_final_backup_where_a_backup_location_is_set() {
    let backups = tempfile::tempdir().unwrap();
    let location = format!("file://{}", backups.path().display());
    let app = crate::helpers::spawn_app_with(|s| s.backup.location = Some(location)).await;
    let t = app.create_tenant("kept-last", json!({})).await;
    let tid = id(&t);
    let admin = app.token(Role::TenantAdmin, Some(tid), None);
    agent_for(&app, &admin, "remembered").await;
    let purge = app.delete_and_purge(&tid.to_string()).await;
    assert_eq!(purge["state"], "succeeded", "{purge}");
    let dir = backups.path().join(tid.to_string());
    let archives: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(archives.len(), 1, "one final archive in {}", dir.display());
    let archive = archives[0].as_ref().unwrap().path();
    assert!(archive.to_string_lossy().ends_with("-final.tpbackup"));
    let verified =
        tenant_plane::backup::read_archive(&archive, &crate::kit::backups::master_key()).unwrap();
    assert_eq!(verified.manifest.tenant_id, tid);
    // The purged tenant's final backup is listed, and brings it back as a
    // new tenant, its rows with it.
    let listed = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{tid}/backups"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(listed["backups"][0]["reason"], "final", "{listed}");
    let backup = listed["backups"][0]["id"].as_str().unwrap();
    let op = app
        .follow(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{tid}/backups/{backup}/restore-as-new"),
                Some(json!({ "slug": "kept-last-again" })),
            )
            .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let again = ok_json(
        app.admin(Method::GET, op["result"].as_str().unwrap(), None)
            .await,
        200,
    )
    .await;
    let admin = app.token(Role::TenantAdmin, Some(id(&again)), None);
    let agents = ok_json(
        crate::kit::call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
    assert!(agents.to_string().contains("remembered"), "{agents}");
}

#[tokio::test]
async fn a_migration_and_a_move_or_purge_of_one_tenant_never_run_together() {
    let app = spawn_app_without_rate_limits().await;
    let extra = start_extra();
    let target = register(&app, "pg-busy", &extra, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = app.create_tenant("busy-migrating", json!({})).await;
    let tid = id(&t);
    let db = DbName::for_tenant(tid);
    // Hold the tenant database's migration lock: a migration waits in it,
    // holding the tenant's operation lock.
    let holder = app.server.connect(db.as_str()).await;
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&tenant_plane::migrator::TENANT_MIGRATION_LOCK],
        )
        .await
        .unwrap();
    let migrating = {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/v1/tenants/{tid}/migrations")),
            app.super_admin_token(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.unfinished_operations().await == 0 {
        assert!(Instant::now() < deadline, "the migration never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (method, path, body) in [
        (
            Method::POST,
            format!("/v1/tenants/{tid}/move"),
            Some(json!({ "server": target })),
        ),
        (Method::POST, format!("/v1/tenants/{tid}/suspend"), None),
        (Method::DELETE, format!("/v1/tenants/{tid}"), None),
    ] {
        let (status, code, _) = envelope(app.admin(method, &path, body).await).await;
        assert_eq!((status, code.as_str()), (409, "tenant_busy"), "{path}");
    }
    holder
        .execute(
            "SELECT pg_advisory_unlock($1)",
            &[&tenant_plane::migrator::TENANT_MIGRATION_LOCK],
        )
        .await
        .unwrap();
    assert_eq!(migrating.await.unwrap().status(), 200);
    // And the other way round: a migration waits for nothing; it is refused
    // while another operation holds the tenant.
    let state = app.state().await;
    let (_, lease) = state
        .services()
        .operations
        .begin(tid, tenant_plane::catalog::OpKind::Move, &json!({}))
        .await
        .unwrap();
    let (status, code, _) = envelope(
        app.admin(
            Method::POST,
            &format!("/v1/tenants/{tid}/migrations"),
            Some(json!({})),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "tenant_busy"));
    lease.discard().await.unwrap();
}

#[tokio::test]
async fn a_move_whose_undo_cannot_resume_writes_is_retried_until_they_resume() {
    let app = spawn_app_without_rate_limits().await;
    // The tenant lives on a server of its own, which goes down mid-move.
    let mut source = tokio::task::spawn_blocking(start_extra).await.unwrap();
    let source_id: uuid::Uuid = register(&app, "pg-source", &source, json!([])).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let catalog_id = crate::kit::servers::catalog_server_id(&app).await;
    crate::kit::servers::set_server_state(&app, &catalog_id, "draining").await;
    let t = app.create_tenant("stranded", json!({})).await;
    crate::kit::servers::set_server_state(&app, &catalog_id, "active").await;
    let tid: TenantId = id(&t);
    let admin = app.token(Role::TenantAdmin, Some(tid), None);
    agent_for(&app, &admin, "before").await;
    // What a move leaves when its copy failed and its undo could not resume
    // the source's writes: the source paused, the operation released.
    let state = app.state().await;
    let db = DbName::for_tenant(tid);
    let server = state
        .services()
        .catalog
        .get_server(source_id)
        .await
        .unwrap()
        .unwrap();
    state
        .tenants()
        .provisioner()
        .set_writes_paused(&server, &db, true)
        .await
        .unwrap();
    let (_, lease) = state
        .services()
        .operations
        .begin(
            tid,
            tenant_plane::catalog::OpKind::Move,
            &json!({ "source": source_id, "target": catalog_id }),
        )
        .await
        .unwrap();
    lease
        .release("the move failed and could not be undone yet")
        .await;
    drop(lease);
    source = tokio::task::spawn_blocking(move || {
        source.stop();
        source
    })
    .await
    .unwrap();
    // While the source is down, every retry fails and the move stays open.
    let retried_by = Instant::now() + Duration::from_secs(6);
    while Instant::now() < retried_by {
        let _ = state.reconciler().run_once().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.unfinished_operations().await,
        1,
        "the move is kept open to retry"
    );
    let attempts: i32 = app
        .catalog_db()
        .await
        .query_one("SELECT attempts FROM operations WHERE kind = 'move'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(attempts >= 2, "retried: {attempts} attempts");
    // Once it is back, the next retry resumes the writes and ends the move.
    let source = tokio::task::spawn_blocking(move || {
        source.restart();
        source
    })
    .await
    .unwrap();
    source.server.connect("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.unfinished_operations().await > 0 {
        assert!(Instant::now() < deadline, "the move was never undone");
        let _ = state.reconciler().run_once().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let write = ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "after", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(write["name"], "after");
}
