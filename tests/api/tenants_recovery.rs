//! Crash safety: the reconciler finishes a create that a crash cut off after
//! CREATE DATABASE but leaves a slow operation of a live replica alone, and
//! `doctor` finds (and fixes) what the catalog does not know.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::catalog::{NewTenant, OpKind};
use tenant_plane::crypto::MasterKey;
use tenant_plane::domain::{DbName, TenantId, TenantStatus, Tier};
use tenant_plane::provisioner::TEMPLATE_LOCK;
use tenant_plane::services::Services;

use crate::cluster;
use crate::helpers::{spawn_app_on, test_settings, MASTER_KEY};

#[tokio::test]
async fn the_reconciler_finishes_a_create_that_crashed_between_create_database_and_the_catalog_update(
) {
    let (settings, catalog_db) = test_settings();
    // First life: record the tenant and its operation, create the database,
    // then "crash" before the catalog learns it is done.
    let services = Services::connect(&settings).await.unwrap();
    let server = services
        .catalog
        .pick_server(tenant_plane::domain::Tier::Standard)
        .await
        .unwrap()
        .unwrap();
    let id = TenantId::generate();
    let db = DbName::for_tenant(id);
    let password = tenant_plane::crypto::random_hex_secret();
    let key = MasterKey::from_hex(&MASTER_KEY.to_string().into()).unwrap();
    let new = NewTenant {
        id,
        slug: tenant_plane::domain::Slug::parse("crashed").unwrap(),
        name: "Crashed".into(),
        parent_id: None,
        tier: Tier::Standard,
        status: TenantStatus::Provisioning,
        db_server_id: Some(server.id),
        db_name: Some(db.clone()),
        db_password_enc: Some(key.seal(
            &tenant_plane::catalog::role_purpose(id),
            password.expose_secret().as_bytes(),
        )),
        schema_version: 0,
        settings: json!({}),
        settings_secrets_enc: None,
    };
    services
        .catalog
        .insert_tenant(
            &new,
            uuid::Uuid::now_v7(),
            OpKind::CreateTenant,
            false,
            crate::helpers::dead_owner(),
        )
        .await
        .unwrap();
    services
        .tenants
        .provisioner()
        .create_tenant_database(&server, &db, &password)
        .await
        .unwrap();
    drop(services);

    // Second life: start-up reconciles before it serves.
    let app = spawn_app_on(settings, catalog_db, cluster::shared().clone()).await;
    let state = app.state().await;
    let tenant = state.tenants().show(id).await.unwrap();
    assert_eq!(tenant.status, TenantStatus::Active);
    assert_eq!(tenant.schema_version, crate::kit::LATEST_TENANT_VERSION);
    assert_eq!(app.unfinished_operations().await, 0);
    // The tenant's HTTP login works with the password the catalog holds.
    let connected = app
        .server
        .connect_as(db.as_str(), &db.http_login(), password.expose_secret())
        .await;
    assert!(connected.is_ok(), "{:?}", connected.err());
}

#[tokio::test]
async fn an_idempotency_key_whose_request_died_is_released_by_the_reconciler() {
    let app = crate::helpers::spawn_app().await;
    let catalog = app.catalog_db().await;
    // What a process killed mid-request leaves: a key with no response.
    catalog
        .execute(
            "INSERT INTO idempotency_keys (principal, key, request_hash, created_at)
             VALUES ('test-user', 'died-mid-request', 'x', now() - interval '2 hours'),
                    ('test-user', 'still-running', 'y', now())",
            &[],
        )
        .await
        .unwrap();
    let report = app.state().await.reconciler().run_once().await.unwrap();
    assert_eq!(report.expired_keys, 1);
    let left: Vec<String> = catalog
        .query("SELECT key FROM idempotency_keys ORDER BY key", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["still-running"], "a request in flight keeps its key");
}

#[tokio::test]
async fn an_operation_slower_than_the_stale_limit_keeps_its_heartbeat_and_no_other_replica_takes_it_over(
) {
    // Timed: with a 3 s stale limit an owner beats every half second and
    // gives up after 1.5 s without a beat, which a loaded machine (the other
    // tests, a browser) can cause. Alone, only the code under test is timed.
    crate::timing::run_alone();
    let (mut settings, catalog_db) = test_settings();
    settings.reconciler.stale_after_secs = 3;
    let server = cluster::shared().clone();
    let a = spawn_app_on(settings.clone(), catalog_db.clone(), server.clone()).await;
    let b = spawn_app_on(settings, catalog_db, server.clone()).await;
    let t = a.create_tenant("slow-suspend", json!({})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    let db = t["database"].as_str().unwrap().to_string();
    // Holding the database's catalog row makes the suspension's REVOKE wait.
    let mut blocker = server.connect("postgres").await;
    let hold = blocker.transaction().await.unwrap();
    hold.batch_execute(&format!(
        "ALTER DATABASE {} CONNECTION LIMIT 1000",
        tenant_plane::sql::quote_ident(&db)
    ))
    .await
    .unwrap();
    let suspend = {
        let (client, url) = (
            a.client.clone(),
            a.url(&format!("/v1/tenants/{tid}/suspend")),
        );
        let token = a.super_admin_token();
        tokio::spawn(async move { client.post(url).bearer_auth(token).send().await.unwrap() })
    };
    let watcher = server.connect("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while watcher
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'REVOKE%'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(Instant::now() < deadline, "the suspension never reached the lock");
        tokio::task::yield_now().await;
    }
    // The point is time passing: outlive the 3 s stale limit while it waits.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let catalog = a.catalog_db().await;
    let stale: i64 = catalog
        .query_one(
            "SELECT count(*) FROM operations WHERE state IN ('pending', 'running')
                AND updated_at <= now() - interval '3 seconds'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stale, 0, "the running suspension looks abandoned");
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        b.state().await.reconciler().run_once(),
    )
    .await
    .expect("the other replica's pass waited on the running operation")
    .unwrap();
    assert!(
        report.resumed.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    hold.rollback().await.unwrap();
    let done = suspend.await.unwrap();
    assert_eq!(done.status(), 200);
    let attempts: Vec<i32> = catalog
        .query(
            "SELECT attempts FROM operations WHERE kind = 'suspend'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(attempts, [1], "the suspension ran once, by its own replica");
}

#[tokio::test]
async fn a_clone_cancelled_while_it_waits_for_the_template_lock_leaves_no_lock_behind_for_a_template_migration(
) {
    // A server of its own: the test holds its template lock.
    let extra = cluster::start_extra();
    let (mut settings, _) = test_settings();
    settings.database_url = Some(extra.server.url(&cluster::catalog_name("lock")));
    let services = Services::connect(&settings).await.unwrap();
    let server = services
        .catalog
        .pick_server(Tier::Standard)
        .await
        .unwrap()
        .unwrap();
    // What a template migration on another replica holds.
    let holder = extra.server.connect("postgres").await;
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
        .await
        .unwrap();
    let id = TenantId::generate();
    let db = DbName::for_tenant(id);
    let password = tenant_plane::crypto::random_hex_secret();
    let provisioner = services.tenants.provisioner();
    let clone = provisioner.create_tenant_database(&server, &db, &password);
    // The request is dropped (its client went away) once its clone queues
    // behind the holder.
    let queued = async {
        loop {
            let waiting: i64 = holder
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        done = clone => panic!("the clone ran under another holder's template lock: {done:?}"),
        () = queued => {}
    }
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
        .await
        .unwrap();
    // The next template migration gets the lock: the cancelled clone's
    // session did not go back to the pool to sit on it.
    holder
        .batch_execute("SET lock_timeout = '20s'")
        .await
        .unwrap();
    let started = Instant::now();
    let relocked = holder
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
        .await;
    assert!(
        relocked.is_ok(),
        "the template lock is still held after {:?}: {relocked:?}",
        started.elapsed()
    );
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
        .await
        .unwrap();
    // And the provisioner still works on that server.
    tokio::time::timeout(Duration::from_secs(60), provisioner.prepare_server(&server))
        .await
        .expect("a template migration after the cancelled clone")
        .unwrap();
}
