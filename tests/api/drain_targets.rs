//! Where a drain sends its tenants: a target that stops taking tenants
//! while the drain's move copies to it (another drain began on it) is
//! replaced by a server still active; with none left, the drain fails with
//! `no_server_available`.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::kit::drain::{
    begin, finished, has_database, set_state, takes_writes, tenant, tenants_on,
};
use crate::kit::servers::catalog_server_id;
use crate::rig::Rig;

#[tokio::test]
async fn a_drain_whose_target_is_drained_during_its_move_moves_the_tenant_to_the_server_still_active_and_succeeds(
) {
    // The drain's replica is stopped mid-move while the test starts a
    // third server and a second drain: its lease must not go stale.
    let rig = Rig::new("drain_retarget")
        .await
        .with_env("TENANT_PLANE_RECONCILER_STALE_AFTER_SECS", "900");
    let third = tokio::task::spawn_blocking(crate::cluster::start_extra)
        .await
        .unwrap();
    let first = rig.replica(None).await;
    let a = rig.catalog_server(&first).await;
    let b = rig.register_second(&first).await;
    let c = rig
        .ok(
            &first,
            Method::POST,
            "/v1/servers",
            Some(json!({ "name": "third", "dsn": third.admin_dsn() })),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The tenant on A; when A's drain picks a target, B is the only
    // active server.
    set_state(&rig, &first, &b, "draining").await;
    set_state(&rig, &first, &c, "draining").await;
    let id = rig.tenant_with_agents(&first, "retarget", 2).await;
    set_state(&rig, &first, &b, "active").await;
    let id_s = id.to_string();
    assert_eq!(tenant(&rig, &first, &id_s).await["server_id"], a);

    // A's drain, on a replica that stops once its move has copied to B.
    let draining = rig
        .replica(Some(("move.after_copy", "1*return(stop)")))
        .await;
    let drain = begin(
        &rig,
        &draining,
        Method::POST,
        &format!("/v1/servers/{a}/drain"),
        None,
    )
    .await;
    draining.stopped(Duration::from_secs(60)).await;
    assert!(
        has_database(&rig.second.server, id).await,
        "the copy on B is made"
    );
    // Meanwhile C comes back into service and B is drained by a drain of
    // its own (it holds no tenant: a copy is not a placement).
    set_state(&rig, &first, &c, "active").await;
    let other = begin(
        &rig,
        &first,
        Method::POST,
        &format!("/v1/servers/{b}/drain"),
        None,
    )
    .await;
    let other = finished(&rig, &first, &other).await;
    assert_eq!(other["state"], "succeeded", "{other}");
    draining.signal(nix::sys::signal::Signal::SIGCONT);

    // The switch to B is refused; the drain picks C on its next pass.
    let drained = finished(&rig, &draining, &drain).await;
    assert_eq!(drained["state"], "succeeded", "{drained}");
    let now = tenant(&rig, &first, &id_s).await;
    assert_eq!(
        (&now["server_id"], &now["status"]),
        (&json!(c), &json!("active"))
    );
    assert_eq!(tenants_on(&rig, &first, &a).await, 0);
    assert_eq!(tenants_on(&rig, &first, &b).await, 0);
    takes_writes(&rig, &first, id, 2).await;
    assert!(
        !has_database(&rig.second.server, id).await,
        "the refused copy on B was dropped"
    );
    assert!(
        !has_database(&rig.server, id).await,
        "the old copy on A was dropped"
    );
    first.stop().await;
    draining.stop().await;
}

#[tokio::test]
async fn a_drain_with_no_active_server_left_to_take_its_tenants_fails_with_no_server_available() {
    let app = spawn_app().await;
    let t = app.create_tenant("nowhere-to-go", json!({})).await;
    let catalog = catalog_server_id(&app).await;
    let op = app
        .follow(
            app.admin(Method::POST, &format!("/v1/servers/{catalog}/drain"), None)
                .await,
        )
        .await;
    assert_eq!(op["state"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "no_server_available", "{op}");
    let on: String = app
        .catalog_db()
        .await
        .query_one(
            "SELECT db_server_id::text FROM tenants WHERE id = $1::text::uuid",
            &[&t["id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(on, catalog, "the tenant stays where it was");
}
