//! refinery's steps on a tenant session (`migrator/batched.rs`): each step
//! one message, the history read once, a file's text kept whole, a bad
//! history row an error.

use reqwest::Method;
use serde_json::{json, Value};

use crate::cluster::ExtraCluster;
use crate::helpers::TestApp;
use crate::kit::migrations::{app_on, has_v2, migrations_dir, server_of_its_own};
use crate::kit::ok_json;

/// Tenants made on the real V1, then a new deploy whose set adds `v2`.
struct Deploy {
    app: TestApp,
    /// `(id, database)` of each tenant, in the order asked for.
    tenants: Vec<(String, String)>,
    // Kept for the test's length: the first deploy, both sets, the server.
    _before: TestApp,
    _dirs: [tempfile::TempDir; 2],
    _extra: ExtraCluster,
}

/// Makes `slugs` on an app with the real V1 (catalog `catalog`), runs
/// `tamper` on the server, then starts an app on V1 and `v2` that shares
/// the catalog.
async fn deploy_v2(
    v2: &str,
    catalog: &str,
    slugs: &[&str],
    tamper: impl AsyncFnOnce(&ExtraCluster, &[(String, String)]),
) -> Deploy {
    let extra = server_of_its_own().await;
    let dirs = [
        migrations_dir(&[]),
        migrations_dir(&[("V2__agent_language", v2)]),
    ];
    let before = app_on(&extra, dirs[0].path(), catalog).await;
    let mut tenants = Vec::new();
    for slug in slugs {
        tenants.push(before.create_tenant_named(slug).await);
    }
    tamper(&extra, &tenants).await;
    let app = app_on(&extra, dirs[1].path(), catalog).await;
    Deploy {
        app,
        tenants,
        _before: before,
        _dirs: dirs,
        _extra: extra,
    }
}

/// Migrates one tenant to the newest version; its answer.
async fn migrate(app: &TestApp, id: &str) -> Value {
    ok_json(
        app.admin(
            Method::POST,
            &format!("/v1/tenants/{id}/migrations"),
            Some(json!({})),
        )
        .await,
        200,
    )
    .await
}

#[tokio::test]
async fn a_migration_file_that_ends_in_a_comment_with_no_semicolon_applies_with_its_history_row() {
    let v2 = "ALTER TABLE agents ADD COLUMN language text -- the last line, no semicolon";
    let deploy = deploy_v2(v2, "history_comment", &["comment"], async |_, _| {}).await;
    let (id, db) = &deploy.tenants[0];
    let migrated = migrate(&deploy.app, id).await;
    assert_eq!(migrated["to_version"], 2, "{migrated}");
    assert_eq!(has_v2(&deploy.app, db).await, (true, 1));
}

#[tokio::test]
async fn a_tenant_whose_history_row_was_tampered_with_fails_its_migration_with_an_error_and_keeps_its_version(
) {
    let v2 = "ALTER TABLE agents ADD COLUMN language text;";
    let deploy = deploy_v2(
        v2,
        "history_tampered",
        &["tampered", "sound"],
        async |extra, tenants| {
            // refinery's own driver panics on this row ("checksum must be a valid u64").
            extra
                .server
                .connect(&tenants[0].1)
                .await
                .execute(
                    "UPDATE refinery_schema_history SET checksum = 'not a number' WHERE version = 1",
                    &[],
                )
                .await
                .unwrap();
        },
    )
    .await;
    let app = &deploy.app;
    let [(tampered, tampered_db), (sound, sound_db)] = &deploy.tenants[..] else {
        unreachable!("two tenants were made");
    };
    let refused = app
        .admin(
            Method::POST,
            &format!("/v1/tenants/{tampered}/migrations"),
            Some(json!({})),
        )
        .await;
    assert_eq!(refused.status().as_u16(), 500);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal_error", "{body}");
    assert_eq!(has_v2(app, tampered_db).await, (false, 0));
    // The tampered tenant's session was let go: the next tenant migrates.
    let migrated = migrate(app, sound).await;
    assert_eq!(migrated["to_version"], 2, "{migrated}");
    assert_eq!(has_v2(app, sound_db).await, (true, 1));
}

/// Scans of `refinery_schema_history` in `db` so far, as the server counts
/// them (a session's counts are in once its backend has exited).
async fn history_scans(app: &TestApp, db: &str) -> i64 {
    app.server
        .connect(db)
        .await
        .query_one(
            "SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::int8
               FROM pg_stat_user_tables WHERE relname = 'refinery_schema_history'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_tenant_migration_reads_refinery_history_once_under_its_lock_and_hands_it_to_refinery() {
    let v2 = "ALTER TABLE agents ADD COLUMN language text;";
    let deploy = deploy_v2(v2, "history_once", &["once"], async |_, _| {}).await;
    let (id, db) = &deploy.tenants[0];
    let scans = history_scans(&deploy.app, db).await;
    let migrated = migrate(&deploy.app, id).await;
    assert_eq!(migrated["to_version"], 2, "{migrated}");
    // The session's backend has exited (the migration waits for that), so
    // its counts are in: one read of the history, none by refinery itself.
    assert_eq!(history_scans(&deploy.app, db).await - scans, 1);
    assert_eq!(has_v2(&deploy.app, db).await, (true, 1));
}
