//! Tenants made while their tenant role and reader were logins: the
//! reconciler makes those roles groups that cannot log in, with the HTTP
//! login that takes the tenant role's place. It grants nothing (a
//! suspended tenant stays shut), and a read-only default on the tenant
//! role carries over only when a pause explains it: a move under way, or
//! the mark a pause of this version leaves. The app's own passes are kept
//! out of the way (an hour apart): these tests run the conversion.

use serde_json::json;
use tenant_plane::catalog::{OpKind, OWNER_LOCK_CLASS};
use tenant_plane::domain::{DbName, TenantId};

use crate::helpers::TestApp;
use crate::kit::gateway::mint_key;
use crate::kit::tenant_db::{can_log_in, http_plane_writes, is_group, read_only_default};

/// Leaves the tenant's roles as an earlier version made them: the tenant
/// role and its reader log in, and neither the HTTP login nor the gateway's
/// reader login exists.
async fn make_legacy(admin: &tokio_postgres::Client, db: &DbName) {
    admin
        .batch_execute(&format!(
            "DROP ROLE \"{http}\"; DROP ROLE IF EXISTS \"{wire_reader}\";
             ALTER ROLE \"{db}\" LOGIN PASSWORD 'old'; ALTER ROLE \"{reader}\" LOGIN PASSWORD 'old'",
            http = db.http_login(),
            wire_reader = db.wire_reader(),
            reader = db.reader(),
        ))
        .await
        .unwrap();
}

async fn spawn() -> TestApp {
    crate::helpers::spawn_app_with(|s| s.reconciler.interval_secs = 3600).await
}

async fn legacy_tenant(app: &TestApp, slug: &str) -> (TenantId, DbName) {
    let tenant = app.create_tenant(slug, json!({})).await;
    let id: TenantId = tenant["id"].as_str().unwrap().parse().unwrap();
    let db = DbName::recognise(tenant["database"].as_str().unwrap()).unwrap();
    (id, db)
}

#[tokio::test]
async fn tenant_roles_that_log_in_become_groups_and_only_a_moves_pause_carries_over_to_the_http_login(
) {
    let app = spawn().await;
    let (open, open_db) = legacy_tenant(&app, "legacy-open").await;
    let (locked, locked_db) = legacy_tenant(&app, "legacy-locked").await;
    let (moving, moving_db) = legacy_tenant(&app, "legacy-moving").await;
    let (shut, shut_db) = legacy_tenant(&app, "legacy-shut").await;
    let key = mint_key(
        &app,
        &open.to_string(),
        json!({ "name": "w", "role": "tenant_admin" }),
    )
    .await;
    let suspended = app
        .admin(
            reqwest::Method::POST,
            &format!("/v1/tenants/{shut}/suspend"),
            Some(json!({})),
        )
        .await;
    assert_eq!(suspended.status(), 200);
    let admin = app.server.connect("postgres").await;
    for db in [&open_db, &locked_db, &moving_db, &shut_db] {
        make_legacy(&admin, db).await;
    }
    // A read-only default on the tenant role: on one, a client's doing
    // before the upgrade; on the other, a move's pause, its move under way
    // (its owner alive: this test holds its lock).
    for db in [&locked_db, &moving_db] {
        admin
            .batch_execute(&format!(
                "ALTER ROLE \"{db}\" SET default_transaction_read_only = on"
            ))
            .await
            .unwrap();
    }
    let catalog = app.catalog_db().await;
    let owner = crate::helpers::dead_owner();
    catalog
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&OWNER_LOCK_CLASS, &owner.key],
        )
        .await
        .unwrap();
    let state = app.state().await;
    let (_, fence) = state
        .services()
        .catalog
        .begin_operation(
            uuid::Uuid::now_v7(),
            moving,
            OpKind::Move,
            &json!({}),
            owner,
        )
        .await
        .unwrap();

    let done = state.tenants().convert_legacy_logins().await.unwrap();
    let mut converted = done.converted.clone();
    converted.sort();
    let mut want = vec![open, locked, moving, shut];
    want.sort();
    assert_eq!(converted, want, "{done:?}");
    assert!(done.failed.is_empty(), "{done:?}");
    for db in [&open_db, &locked_db, &moving_db, &shut_db] {
        assert!(is_group(&admin, db.as_str()).await, "{db}");
        assert!(is_group(&admin, &db.reader()).await, "{db}'s reader");
        assert!(can_log_in(&admin, &db.http_login()).await, "{db}");
    }
    assert!(read_only_default(&admin, &moving_db.http_login()).await);
    for db in [&open_db, &locked_db] {
        assert!(!read_only_default(&admin, &db.http_login()).await, "{db}");
    }
    // The suspended tenant's roles got no CONNECT back.
    let connect: bool = admin
        .query_one(
            "SELECT has_database_privilege($1, $3, 'CONNECT')
                 OR has_database_privilege($2, $3, 'CONNECT')",
            &[&shut_db.http_login(), &shut_db.reader(), &shut_db.as_str()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!connect, "a suspended tenant's roles may connect again");
    http_plane_writes(&app, &key, "converted").await;

    state
        .services()
        .catalog
        .discard_operation(fence)
        .await
        .unwrap();
    let again = state.reconciler().run_once().await.unwrap();
    assert!(again.logins.converted.is_empty(), "{:?}", again.logins);
    // An HTTP login dropped by hand is made again.
    admin
        .batch_execute(&format!("DROP ROLE \"{}\"", open_db.http_login()))
        .await
        .unwrap();
    let mended = state.reconciler().run_once().await.unwrap();
    assert_eq!(mended.logins.converted, [open], "{:?}", mended.logins);
    http_plane_writes(&app, &key, "mended").await;
}

#[tokio::test]
async fn a_tenant_paused_by_read_only_defaults_alone_keeps_its_pause_on_the_http_login_by_the_mark_the_pause_left(
) {
    let app = spawn().await;
    let (id, db) = legacy_tenant(&app, "legacy-marked").await;
    // Its reader cannot read every table: the pause is the defaults alone.
    crate::kit::tenant_db::pause_writes(&app, &db, true).await;
    let state = app.state().await;
    let admin = app.server.connect("postgres").await;
    make_legacy(&admin, &db).await;

    // No operation says a move is under way: the mark does.
    let done = state.tenants().convert_legacy_logins().await.unwrap();
    assert_eq!(done.converted, [id], "{done:?}");
    assert!(
        read_only_default(&admin, &db.http_login()).await,
        "the pause was lost"
    );
    crate::kit::tenant_db::resume_writes(&app, &db).await;
    assert!(!read_only_default(&admin, &db.http_login()).await);
}
