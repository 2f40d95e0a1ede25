//! What restores over the API leave: the operation names the tenant it
//! restores from, a subtenant purged since the backup stays purged with its
//! rows, and a failed dump restore says it was a restore; an archive's
//! subtenants carry their root's schema version, and a restore as a new
//! tenant says how it renamed them.

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;
use tenant_plane::backup::read_archive;
use tenant_plane::domain::Slug;
use tenant_plane::tenants::RestoreTarget;

use crate::helpers::{spawn_app_with, TestApp};
use crate::kit::backups::{master_key, populated_tenant};
use crate::kit::{call, id, ok_json};

/// An app whose backup location is a fresh folder (kept with the app).
async fn app_with_location() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let location = format!("file://{}", dir.path().display());
    (
        spawn_app_with(|s| s.backup.location = Some(location)).await,
        dir,
    )
}

/// Takes a backup of `tenant` over the API; returns its id.
async fn back_up(app: &TestApp, tenant: &str) -> String {
    let op = app
        .follow(
            app.admin(Method::POST, &format!("/v1/tenants/{tenant}/backups"), None)
                .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let backup = ok_json(
        app.admin(Method::GET, op["result"].as_str().unwrap(), None)
            .await,
        200,
    )
    .await;
    backup["id"].as_str().unwrap().to_string()
}

async fn suspend(app: &TestApp, tenant: &str) {
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tenant}/suspend"), None)
            .await,
        200,
    )
    .await;
}

#[tokio::test]
async fn a_restore_as_a_new_tenant_names_the_tenant_it_restores_from_and_its_result_the_new_one() {
    let (app, _dir) = app_with_location().await;
    let t = app.create_tenant("clone-source", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    app.create_subtenant(tid, "clone-source-eu").await;
    let backup = back_up(&app, tid).await;
    let started = app
        .admin(
            Method::POST,
            &format!("/v1/tenants/{tid}/backups/{backup}/restore-as-new"),
            Some(json!({ "slug": "clone-made" })),
        )
        .await;
    assert_eq!(started.status(), 202);
    let begun: Value = started.json().await.unwrap();
    assert_eq!(begun["kind"], "restore_as_new");
    assert_eq!(begun["tenant_id"], tid, "{begun}");
    // Listed among the source's operations too.
    let listed = ok_json(
        app.admin(Method::GET, &format!("/v1/operations?tenant={tid}"), None)
            .await,
        200,
    )
    .await;
    assert!(
        listed["operations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["id"] == begun["id"]),
        "{listed}"
    );
    let op = app
        .wait_operation(&format!("/v1/operations/{}", begun["id"].as_str().unwrap()))
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["tenant_id"], tid, "{op}");
    let made = ok_json(
        app.admin(Method::GET, op["result"].as_str().unwrap(), None)
            .await,
        200,
    )
    .await;
    assert_eq!(made["slug"], "clone-made");
    assert_ne!(made["id"], tid);
    // Slugs are unique: the clone's subtenant got a new one, and says so.
    assert_eq!(
        op["subtenants_renamed"],
        json!([{ "from": "clone-source-eu", "to": "clone-made-clone-source-eu" }]),
        "{op}"
    );
}

#[tokio::test]
async fn an_in_place_restore_keeps_a_subtenant_purged_since_the_backup_purged_and_its_rows_unreadable(
) {
    let (app, _dir) = app_with_location().await;
    let (t, sub, _) = populated_tenant(&app, "purge-then-restore").await;
    let tid = t["id"].as_str().unwrap();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let names = |listed: Value| -> Vec<String> {
        listed["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    let before = names(
        ok_json(
            call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
            200,
        )
        .await,
    );
    assert!(
        before.contains(&"a1".to_string()),
        "the subtenant's agent: {before:?}"
    );
    let backup = back_up(&app, tid).await;
    let purged = app.delete_and_purge(&sub).await;
    assert_eq!(purged["state"], "succeeded", "{purged}");

    suspend(&app, tid).await;
    let op = app
        .follow(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{tid}/backups/{backup}/restore"),
                None,
            )
            .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    ok_json(
        app.admin(Method::POST, &format!("/v1/tenants/{tid}/resume"), None)
            .await,
        200,
    )
    .await;

    // The tenant-wide reader sees the root's agent, not the purged one's.
    let after = names(
        ok_json(
            call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
            200,
        )
        .await,
    );
    assert_eq!(after, ["a0"], "{after:?}");
    let db = app.server.connect(t["database"].as_str().unwrap()).await;
    let sub_uuid: uuid::Uuid = sub.parse().unwrap();
    let rows: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM agents WHERE subtenant_id = $1)
                  + (SELECT count(*) FROM calls WHERE subtenant_id = $1)
                  + (SELECT count(*) FROM audit_log WHERE subtenant_id = $1)",
            &[&sub_uuid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "the purged subtenant's rows stay gone");
    assert_eq!(
        app.catalog_count(&format!(
            "SELECT count(*) FROM tenants WHERE id = '{sub}' AND purged_at IS NOT NULL"
        ))
        .await,
        1,
        "the subtenant stays purged"
    );
    let gone = app
        .admin(Method::GET, &format!("/v1/tenants/{sub}"), None)
        .await;
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn a_restore_whose_dump_restore_fails_records_restore_failed_rather_than_move_failed() {
    let (app, _dir) = app_with_location().await;
    let t = app.create_tenant("restore-fails", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let db = app.server.connect(t["database"].as_str().unwrap()).await;
    // A grant to a role that exists at backup time and is gone at restore
    // time: pg_restore stops on it.
    let role = format!("gone_{}", uuid::Uuid::new_v4().simple());
    db.batch_execute(&format!(
        "CREATE ROLE {role}; GRANT SELECT ON agents TO {role}"
    ))
    .await
    .unwrap();
    let backup = back_up(&app, tid).await;
    db.batch_execute(&format!(
        "REVOKE ALL ON agents FROM {role}; DROP ROLE {role}"
    ))
    .await
    .unwrap();

    suspend(&app, tid).await;
    let op = app
        .follow(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{tid}/backups/{backup}/restore"),
                None,
            )
            .await,
        )
        .await;
    assert_eq!(op["state"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "restore_failed", "{op}");
}

#[tokio::test]
async fn an_archive_records_a_subtenant_at_its_roots_schema_version_and_a_restore_as_new_reports_its_renamed_subtenants(
) {
    let app = spawn_app_with(|_| {}).await;
    let (t, _sub, _) = populated_tenant(&app, "versioned").await;
    let tid = id(&t);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("versioned.tpbak");
    let tenants = app.state().await.tenants().clone();
    let manifest = tenants.backup(tid, &file).await.unwrap();
    assert!(manifest.schema_version > 0);
    let archive = read_archive(&file, &master_key()).unwrap();
    let subtenants = &archive.document.subtenants;
    assert_eq!(subtenants.len(), 1);
    assert_eq!(
        subtenants[0].schema_version, manifest.schema_version,
        "a subtenant shares its root's database and schema"
    );

    let slug = Slug::parse("versioned-clone").unwrap();
    let report = tenants
        .restore_backup(&archive, RestoreTarget::AsNew { slug })
        .await
        .unwrap();
    let renamed: Vec<(String, String)> = report
        .subtenants_renamed
        .iter()
        .map(|r| (r.from.clone(), r.to.clone()))
        .collect();
    assert_eq!(
        renamed,
        [(
            "versioned-sub".to_string(),
            "versioned-clone-versioned-sub".to_string()
        )]
    );
}
