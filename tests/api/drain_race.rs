//! A drain against placements that race it, from outside: real replicas,
//! each stopped (SIGSTOP) at a failpoint between choosing a server and
//! writing the placement, while another replica drains that server. A
//! drain that says it succeeded has left nothing on its server, and nothing
//! lands there after it.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::kit::drain::{
    begin, finished, has_database, set_state, takes_writes, tenant, tenants_on,
};
use crate::rig::Rig;

#[tokio::test]
async fn a_drain_reports_success_only_with_its_server_empty_while_creates_and_a_move_race_onto_it()
{
    // The stopped move's owner must not go stale while other replicas
    // start and the drain runs (a 2-core machine under load may take
    // minutes): a takeover would undo the move with another error.
    let rig = Rig::new("drain_race")
        .await
        .with_env("TENANT_PLANE_RECONCILER_STALE_AFTER_SECS", "900");
    let first = rig.replica(None).await;
    let b = rig.register_second(&first).await;
    let a = rig.catalog_server(&first).await;
    // A tenant on B, to be moved onto A.
    set_state(&rig, &first, &a, "draining").await;
    let mover = rig.tenant_with_agents(&first, "race-mover", 2).await;
    set_state(&rig, &first, &a, "active").await;
    let mover_s = mover.to_string();
    assert_eq!(tenant(&rig, &first, &mover_s).await["server_id"], b);

    // A move onto A, stopped after its copy, before its switch.
    let moving = rig
        .replica(Some(("move.after_copy", "1*return(stop)")))
        .await;
    let move_op = begin(
        &rig,
        &moving,
        Method::POST,
        &format!("/v1/tenants/{mover}/move"),
        Some(json!({ "server": a })),
    )
    .await;
    moving.stopped(Duration::from_secs(60)).await;
    // A create that chose A (it has the most room), stopped before it
    // records the tenant there.
    let creating = rig
        .replica(Some(("create.after_pick", "1*return(stop)")))
        .await;
    let late = {
        let (client, url) = (rig.client.clone(), format!("{}/v1/tenants", creating.base));
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(crate::rig::admin_token())
                .json(&json!({ "name": "late", "slug": "race-late" }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    creating.stopped(Duration::from_secs(60)).await;

    // The drain of A, with more creates from other clients meanwhile.
    let drain = begin(
        &rig,
        &first,
        Method::POST,
        &format!("/v1/servers/{a}/drain"),
        None,
    )
    .await;
    let mut meanwhile = Vec::new();
    for i in 0..3 {
        let (client, url) = (rig.client.clone(), format!("{}/v1/tenants", first.base));
        meanwhile.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(crate::rig::admin_token())
                .json(&json!({ "name": "meanwhile", "slug": format!("race-meanwhile-{i}") }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let drained = finished(&rig, &first, &drain).await;
    assert_eq!(drained["state"], "succeeded", "{drained}");
    assert_eq!(
        tenants_on(&rig, &first, &a).await,
        0,
        "when the drain succeeded"
    );

    // The stopped placements go on: neither may land on A now.
    creating.signal(nix::sys::signal::Signal::SIGCONT);
    moving.signal(nix::sys::signal::Signal::SIGCONT);
    let (status, made) = tokio::time::timeout(Duration::from_secs(60), late)
        .await
        .expect("the create answered")
        .unwrap();
    assert_eq!(status, 201, "{made}");
    let mut created = vec![made];
    for m in meanwhile {
        let (status, made) = m.await.unwrap();
        assert_eq!(status, 201, "{made}");
        created.push(made);
    }
    for made in created {
        let now = tenant(&rig, &first, made["id"].as_str().unwrap()).await;
        assert_eq!(now["server_id"], b, "created during the drain: {now}");
        assert_eq!(now["status"], "active", "{now}");
    }
    let moved = finished(&rig, &moving, &move_op).await;
    assert_eq!(moved["state"], "failed", "{moved}");
    assert_eq!(moved["error"]["code"], "server_not_active", "{moved}");
    let now = tenant(&rig, &first, &mover_s).await;
    assert_eq!(
        (&now["server_id"], &now["status"]),
        (&json!(b), &json!("active"))
    );
    takes_writes(&rig, &first, mover, 2).await;
    assert!(
        !has_database(&rig.server, mover).await,
        "the move's copy on A was dropped"
    );
    rig.settled(Duration::from_secs(30)).await;
    assert_eq!(
        tenants_on(&rig, &first, &a).await,
        0,
        "after every race settled"
    );
    for replica in [first, moving, creating] {
        replica.stop().await;
    }
}

#[tokio::test]
async fn a_move_whose_target_began_draining_during_its_copy_fails_and_leaves_the_tenant_where_it_was(
) {
    let rig = Rig::new("move_target_drained").await;
    let first = rig.replica(None).await;
    let b = rig.register_second(&first).await;
    let a = rig.catalog_server(&first).await;
    set_state(&rig, &first, &b, "draining").await;
    let id = rig.tenant_with_agents(&first, "stays-put", 3).await;
    set_state(&rig, &first, &b, "active").await;
    let id_s = id.to_string();
    assert_eq!(tenant(&rig, &first, &id_s).await["server_id"], a);

    let moving = rig
        .replica(Some(("move.after_copy", "1*return(stop)")))
        .await;
    let op = begin(
        &rig,
        &moving,
        Method::POST,
        &format!("/v1/tenants/{id}/move"),
        Some(json!({ "server": b })),
    )
    .await;
    moving.stopped(Duration::from_secs(60)).await;
    assert!(
        has_database(&rig.second.server, id).await,
        "the copy is made"
    );
    set_state(&rig, &first, &b, "draining").await;
    moving.signal(nix::sys::signal::Signal::SIGCONT);

    let ended = finished(&rig, &moving, &op).await;
    assert_eq!(ended["state"], "failed", "{ended}");
    assert_eq!(ended["error"]["code"], "server_not_active", "{ended}");
    let now = tenant(&rig, &first, &id_s).await;
    assert_eq!(
        (&now["server_id"], &now["status"]),
        (&json!(a), &json!("active"))
    );
    assert_eq!(tenants_on(&rig, &first, &b).await, 0);
    takes_writes(&rig, &first, id, 3).await;
    assert!(
        !has_database(&rig.second.server, id).await,
        "the copy on the draining server was dropped"
    );
    first.stop().await;
    moving.stop().await;
}

#[tokio::test]
async fn a_drain_waits_for_a_tenant_still_being_created_on_its_server_and_moves_it_off_before_succeeding(
) {
    let rig = Rig::new("drain_waits_create").await;
    let first = rig.replica(None).await;
    let b = rig.register_second(&first).await;
    let a = rig.catalog_server(&first).await;
    // A create recorded on A (the older of two empty servers) before the
    // drain's mark, stopped before it finishes.
    let creating = rig
        .replica(Some(("create.after_insert", "1*return(stop)")))
        .await;
    let create = {
        let (client, url) = (rig.client.clone(), format!("{}/v1/tenants", creating.base));
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(crate::rig::admin_token())
                .json(&json!({ "name": "early", "slug": "race-early" }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    creating.stopped(Duration::from_secs(60)).await;
    assert_eq!(tenants_on(&rig, &first, &a).await, 1);
    let drain = begin(
        &rig,
        &first,
        Method::POST,
        &format!("/v1/servers/{a}/drain"),
        None,
    )
    .await;
    // The tenant is busy with its create: the drain waits for it rather
    // than giving up or passing it by. First it must have listed it (one
    // tenant, none moved), then it stays running with none moved.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let op = rig.ok(&first, Method::GET, &drain, None, 200).await;
        assert_eq!(op["state"], "running", "{op}");
        if op["progress"]["total"] == 1 && op["progress"]["done"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the drain never listed the tenant: {op}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let waiting = rig.ok(&first, Method::GET, &drain, None, 200).await;
        assert_eq!(waiting["state"], "running", "{waiting}");
        assert_eq!(waiting["progress"]["done"], 0, "{waiting}");
    }
    creating.signal(nix::sys::signal::Signal::SIGCONT);
    let (status, made) = tokio::time::timeout(Duration::from_secs(60), create)
        .await
        .expect("the create answered")
        .unwrap();
    assert_eq!(status, 201, "{made}");
    let drained = finished(&rig, &first, &drain).await;
    assert_eq!(drained["state"], "succeeded", "{drained}");
    assert_eq!(tenants_on(&rig, &first, &a).await, 0);
    let id = made["id"].as_str().unwrap();
    let now = tenant(&rig, &first, id).await;
    assert_eq!(
        (&now["server_id"], &now["status"]),
        (&json!(b), &json!("active"))
    );
    takes_writes(&rig, &first, id.parse().unwrap(), 0).await;
    first.stop().await;
    creating.stop().await;
}
