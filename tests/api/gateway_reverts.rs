//! A revert under way admits no gateway session: a session opened while a
//! revert of tenant migration V3 or V5 holds its lock waits for it, then
//! reads the schema as committed, and its client is refused. A check cut
//! short by the database's lock timeout is not blamed on the schema.

use crate::helpers::{spawn_app, TestApp};
use crate::kit::gateway::{connect, refused_before_any_sql, tenant_database, tenant_with_key};

#[tokio::test]
async fn a_writer_arriving_while_a_revert_of_v5_is_under_way_is_refused_once_it_commits() {
    let app = spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "wire-forge-race", "tenant_admin").await;
    let database = tenant_database(&app, &id).await;
    // The revert's first step, not committed yet: the policy is gone in its
    // transaction alone, and the table is locked until it ends.
    let refused = refused_after_revert(
        &app,
        &database,
        "DROP POLICY wire_writes_no_audit ON audit_log",
        &slug,
        &key,
    )
    .await;
    assert_eq!(
        refused,
        "28000: the tenant's database does not keep SQL sessions from writing its audit log yet: it needs tenant migration V5"
    );
}

#[tokio::test]
async fn a_subtenant_client_arriving_while_a_revert_of_v3_is_under_way_is_refused_once_it_commits()
{
    let app = spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "wire-v3-race", "tenant_admin").await;
    app.create_subtenant(&id, "wire-v3-race-a").await;
    let user = format!("{slug}.wire-v3-race-a");
    let database = tenant_database(&app, &id).await;
    assert_eq!(
        refused_after_revert(&app, &database, V3_DOWN, &user, &key).await,
        "28000: the tenant's database does not hold subtenant sessions to their rows yet: it needs tenant migration V3"
    );
}

#[tokio::test]
async fn a_client_arriving_while_a_revert_holds_its_lock_past_the_databases_lock_timeout_is_told_to_try_again_not_that_its_schema_is_behind(
) {
    let app = spawn_app().await;
    let (id, slug, key) = tenant_with_key(&app, "wire-lock-timeout", "tenant_admin").await;
    let database = tenant_database(&app, &id).await;
    // The database's own default (an operator's, not a client's), and a
    // first client that holds its session, so the next client's needs a
    // new one.
    let first = connect(&app, &slug, &key).await.unwrap();
    first.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let operator = app.server.connect("postgres").await;
    operator
        .batch_execute(&format!(
            "ALTER DATABASE \"{database}\" SET lock_timeout = '20ms'"
        ))
        .await
        .unwrap();
    // A revert's first step, not committed: the audit log is locked.
    let mut admin = app.server.connect(&database).await;
    let revert = admin.transaction().await.unwrap();
    revert
        .batch_execute("DROP POLICY wire_writes_no_audit ON audit_log")
        .await
        .unwrap();
    let refused = refused_before_any_sql(&app, &slug, &key).await;
    assert!(
        refused.starts_with("53300: ") && refused.ends_with("try again"),
        "{refused}"
    );
    // The revert given up, the next client is served.
    revert.rollback().await.unwrap();
    let next = connect(&app, &slug, &key).await.unwrap();
    let rows = next.simple_query("SELECT count(*) FROM agents").await;
    assert!(rows.is_ok(), "{rows:?}");
    first.batch_execute("COMMIT").await.unwrap();
}

const V3_DOWN: &str =
    include_str!("../../tenant_template/migrations/V3__subtenant_logins.down.sql");

/// Returns once a gateway session to `database` waits on a lock.
async fn lock_waiter(observer: &tokio_postgres::Client, database: &str) {
    loop {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = $1 AND application_name = 'tenant-plane-gateway'
                    AND wait_event_type = 'Lock'",
                &[&database],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Runs `revert` in a transaction on `database`, logs `user` in meanwhile,
/// and once the gateway's new session waits on the revert's lock, commits;
/// then what the client was told.
async fn refused_after_revert(
    app: &TestApp,
    database: &str,
    revert: &str,
    user: &str,
    key: &str,
) -> String {
    let mut admin = app.server.connect(database).await;
    let transaction = admin.transaction().await.unwrap();
    transaction.batch_execute(revert).await.unwrap();
    let login = refused_before_any_sql(app, user, key);
    tokio::pin!(login);
    let observer = app.server.connect("postgres").await;
    tokio::select! {
        refused = &mut login => panic!("answered before the revert ended: {refused}"),
        () = lock_waiter(&observer, database) => {}
    }
    transaction.commit().await.unwrap();
    login.await
}
