//! refinery's steps on a tenant session (`migrator/batched.rs`): each step
//! one message, the history read once, a file's text kept whole, a bad
//! history row an error.

use reqwest::Method;
use serde_json::json;

use crate::kit::migrations::{app_on, has_v2, migrations_dir, server_of_its_own};
use crate::kit::ok_json;

#[tokio::test]
async fn a_migration_file_that_ends_in_a_comment_with_no_semicolon_applies_with_its_history_row() {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[(
        "V2__agent_language",
        "ALTER TABLE agents ADD COLUMN language text -- the last line, no semicolon",
    )]);
    let before = app_on(&extra, v1.path(), "history_comment").await;
    let (id, db) = before.create_tenant_named("comment").await;
    let app = app_on(&extra, v2.path(), "history_comment").await;
    let migrated = ok_json(
        app.admin(
            Method::POST,
            &format!("/v1/tenants/{id}/migrations"),
            Some(json!({})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(migrated["to_version"], 2, "{migrated}");
    assert_eq!(has_v2(&app, &db).await, (true, 1));
}

#[tokio::test]
async fn a_tenant_whose_history_row_was_tampered_with_fails_its_migration_with_an_error_and_keeps_its_version(
) {
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[(
        "V2__agent_language",
        "ALTER TABLE agents ADD COLUMN language text;",
    )]);
    let before = app_on(&extra, v1.path(), "history_tampered").await;
    let (tampered, tampered_db) = before.create_tenant_named("tampered").await;
    let (sound, sound_db) = before.create_tenant_named("sound").await;
    // refinery's own driver panics on this row ("checksum must be a valid u64").
    extra
        .server
        .connect(&tampered_db)
        .await
        .execute(
            "UPDATE refinery_schema_history SET checksum = 'not a number' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let app = app_on(&extra, v2.path(), "history_tampered").await;
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
    assert_eq!(has_v2(&app, &tampered_db).await, (false, 0));
    // The tampered tenant's session was let go: the next tenant migrates.
    let migrated = ok_json(
        app.admin(
            Method::POST,
            &format!("/v1/tenants/{sound}/migrations"),
            Some(json!({})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(migrated["to_version"], 2, "{migrated}");
    assert_eq!(has_v2(&app, &sound_db).await, (true, 1));
}

/// Scans of `refinery_schema_history` in `db` so far, as the server counts
/// them (a session's counts are in once its backend has exited).
async fn history_scans(app: &crate::helpers::TestApp, db: &str) -> i64 {
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
    let extra = server_of_its_own().await;
    let v1 = migrations_dir(&[]);
    let v2 = migrations_dir(&[(
        "V2__agent_language",
        "ALTER TABLE agents ADD COLUMN language text;",
    )]);
    let before = app_on(&extra, v1.path(), "history_once").await;
    let (id, db) = before.create_tenant_named("once").await;
    let app = app_on(&extra, v2.path(), "history_once").await;
    let scans = history_scans(&app, &db).await;
    let migrated = ok_json(
        app.admin(
            Method::POST,
            &format!("/v1/tenants/{id}/migrations"),
            Some(json!({})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(migrated["to_version"], 2, "{migrated}");
    // The session's backend has exited (the migration waits for that), so
    // its counts are in: one read of the history, none by refinery itself.
    assert_eq!(history_scans(&app, &db).await - scans, 1);
    assert_eq!(has_v2(&app, &db).await, (true, 1));
}
