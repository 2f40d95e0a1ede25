//! The expected schema of a version: built once in a scratch database
//! (whoever asks, however many at once), kept in the catalog for the other
//! replicas, and never leaving a scratch database behind, even one a crash
//! left.

use tenant_plane::drift::ObjectKind;

use crate::helpers::spawn_app;
use crate::kit::expected_schemas::{inspector, installation, scratch_databases, tenant_target};

#[tokio::test]
async fn tenants_at_one_version_share_one_scratch_build_and_another_replica_reuses_the_catalogs() {
    let app = spawn_app().await;
    let (a, _) = app.create_tenant_named("expected-a").await;
    let (b, _) = app.create_tenant_named("expected-b").await;
    let (server_a, db_a, version) = tenant_target(&app, &a).await;
    let (server_b, db_b, version_b) = tenant_target(&app, &b).await;
    assert_eq!(version, version_b);
    let first = inspector(&app).await;

    // Both at once: one builds, the other waits for it.
    let (check_a, check_b) = tokio::join!(
        first.check(&server_a, &db_a, version),
        first.check(&server_b, &db_b, version)
    );
    let (check_a, check_b) = (check_a.unwrap(), check_b.unwrap());
    assert!(check_a.in_sync && check_b.in_sync);
    assert_eq!(first.builds(), 1);
    assert_eq!(check_a.expected_fingerprint, check_b.expected_fingerprint);
    first.check(&server_a, &db_a, version).await.unwrap();
    assert_eq!(first.builds(), 1, "kept in memory");

    let stored = app
        .catalog_db()
        .await
        .query_one(
            "SELECT fingerprint, jsonb_array_length(snapshot -> 'objects')
               FROM expected_schemas WHERE version = $1",
            &[&version],
        )
        .await
        .unwrap();
    assert_eq!(stored.get::<_, String>(0), check_a.expected_fingerprint);
    assert!(stored.get::<_, i32>(1) > 10, "the snapshot is stored whole");

    // Another replica: no scratch database, the catalog's snapshot.
    let second = inspector(&app).await;
    let again = second.check(&server_b, &db_b, version).await.unwrap();
    assert!(again.in_sync);
    assert_eq!(second.builds(), 0);
    assert_eq!(again.expected_fingerprint, check_a.expected_fingerprint);
    assert!(scratch_databases(&app).await.is_empty());
}

#[tokio::test]
async fn a_stored_snapshot_of_another_migration_set_is_built_again_not_trusted() {
    let app = spawn_app().await;
    let (id, _) = app.create_tenant_named("expected-stale").await;
    let (server, db, version) = tenant_target(&app, &id).await;
    inspector(&app)
        .await
        .check(&server, &db, version)
        .await
        .unwrap();
    // As if another set (an edited file) had built it: an empty schema.
    app.catalog_db()
        .await
        .execute(
            "UPDATE expected_schemas SET checksum = repeat('0', 64),
                    snapshot = '{\"objects\": []}' WHERE version = $1",
            &[&version],
        )
        .await
        .unwrap();

    let replica = inspector(&app).await;
    let check = replica.check(&server, &db, version).await.unwrap();

    assert!(check.in_sync, "{:#?}", check.diff);
    assert_eq!(replica.builds(), 1);
    let restored = app
        .catalog_count(&format!(
            "SELECT count(*) FROM expected_schemas
              WHERE version = {version} AND checksum <> repeat('0', 64)"
        ))
        .await;
    assert_eq!(restored, 1, "the rebuilt snapshot replaced the stale one");
}

#[tokio::test]
async fn a_scratch_database_a_crash_left_is_dropped_by_the_next_build_and_no_check_leaves_one() {
    let app = spawn_app().await;
    let (id, _) = app.create_tenant_named("expected-sweep").await;
    let (server, db, version) = tenant_target(&app, &id).await;
    let admin = app.server.connect("postgres").await;
    let ours = format!("ai_care_expected_v{version}_0badc0ffee00");
    let foreign = format!("ai_care_expected_v{version}_0f0e1e2e3e4e");
    let other_installation = uuid::Uuid::new_v4();
    for (name, owner) in [
        (&ours, installation(&app).await),
        (&foreign, other_installation),
    ] {
        // Apart: CREATE DATABASE cannot share a transaction.
        admin
            .batch_execute(&format!(r#"CREATE DATABASE "{name}""#))
            .await
            .unwrap();
        admin
            .batch_execute(&format!(
                r#"COMMENT ON DATABASE "{name}" IS 'tenant-plane installation {owner}'"#
            ))
            .await
            .unwrap();
    }
    assert_eq!(scratch_databases(&app).await, vec![ours.clone()]);

    let check = inspector(&app)
        .await
        .check(&server, &db, version)
        .await
        .unwrap();

    assert!(check.in_sync);
    assert!(scratch_databases(&app).await.is_empty(), "ours was swept");
    let kept: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&foreign],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "another installation's is never touched");
    admin
        .batch_execute(&format!(r#"DROP DATABASE "{foreign}""#))
        .await
        .unwrap();
}

#[tokio::test]
async fn version_zero_expects_no_tables_and_an_unknown_version_is_refused() {
    let app = spawn_app().await;
    let (id, _) = app.create_tenant_named("expected-zero").await;
    let (server, db, version) = tenant_target(&app, &id).await;
    let inspector = inspector(&app).await;

    let zero = inspector.expected(&server, 0).await.unwrap();
    assert!(zero
        .snapshot
        .objects()
        .iter()
        .all(|o| o.kind() != ObjectKind::Table));
    let check = inspector.check(&server, &db, 0).await.unwrap();
    assert!(!check.in_sync, "a migrated tenant is not at version 0");

    let err = inspector
        .check(&server, &db, version + 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(err, tenant_plane::drift::DriftError::UnknownVersion { .. }),
        "{err:?}"
    );
    assert!(scratch_databases(&app).await.is_empty());
}
