//! A drain's check of its server: the state it judges by and the listing
//! it counts are one reading. An operator who puts the server back in
//! service while the listing is being read waits for it, so a drain can
//! never count an empty server as drained after it was reactivated.

use std::time::{Duration, Instant};

use tenant_plane::catalog::ServerState;
use tokio_postgres::error::SqlState;

use crate::helpers::spawn_app;
use crate::kit::servers::catalog_server_id;

#[tokio::test]
async fn putting_a_server_back_in_service_waits_for_a_drain_listing_already_under_way_so_the_drain_judges_the_state_its_listing_saw(
) {
    let app = spawn_app().await;
    let server: uuid::Uuid = catalog_server_id(&app).await.parse().unwrap();
    let catalog = app.catalog_db().await;
    catalog
        .execute(
            "UPDATE db_servers SET state = 'draining' WHERE id = $1",
            &[&server],
        )
        .await
        .unwrap();
    // Hold the tenants table, so the drain's listing waits after it read
    // the server's state: the widest gap there could be between the two.
    let holder = app.catalog_db().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let state = app.state().await;
    let listing = tokio::spawn(async move { state.services().catalog.drain_listing(server).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = catalog
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'
                    AND query LIKE '%FROM tenants%WHERE db_server_id = $1 AND parent_id IS NULL AND purged_at IS NULL%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the drain's listing never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The operator's reactivation, in that gap: it must wait for the drain.
    let operator = app.catalog_db().await;
    operator
        .batch_execute("SET lock_timeout = '1s'")
        .await
        .unwrap();
    let reactivate = "UPDATE db_servers SET state = 'active' WHERE id = $1";
    let refused = operator.execute(reactivate, &[&server]).await;
    assert_eq!(
        refused.as_ref().err().and_then(|e| e.code()),
        Some(&SqlState::LOCK_NOT_AVAILABLE),
        "the server was reactivated between the drain's state and its listing: {refused:?}"
    );
    holder.batch_execute("COMMIT").await.unwrap();
    let (state, listed) = listing.await.unwrap().unwrap().expect("the server");
    assert_eq!(state, ServerState::Draining);
    assert!(listed.is_empty());
    // Once the listing is read, the operator's change goes through.
    operator.execute(reactivate, &[&server]).await.unwrap();
}
