//! A begin whose caller stops waiting (a cancelled request, an aborted
//! fleet worker) still ends with its operation released, so a reconciler
//! takes it over at once rather than after `reconciler.stale_after_secs`.

use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::json;
use tenant_plane::catalog::OpKind;
use tenant_plane::domain::TenantId;

use crate::helpers::spawn_app;
use crate::kit::id;

#[tokio::test]
async fn an_operation_begun_for_a_caller_that_stopped_waiting_is_released_at_once() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("dropped-begin", json!({})).await;
    let tid: TenantId = id(&tenant);
    let state = app.state().await;
    // Poll the begin once, then drop it, as a select! that chose another
    // branch would.
    let params = json!({ "test": true });
    let begin = state
        .services()
        .operations
        .begin(tid, OpKind::Migrate, &params);
    assert!(
        Box::pin(begin).now_or_never().is_none(),
        "a begin waits for the catalog"
    );

    let catalog = app.catalog_db().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let released: Option<bool> = catalog
            .query_opt(
                "SELECT owner = '00000000-0000-0000-0000-000000000000'::uuid
                   FROM operations WHERE tenant_id = $1 AND kind = 'migrate' AND state = 'running'",
                &[&tid.as_uuid()],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        if released == Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped begin's operation was not released: {released:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
