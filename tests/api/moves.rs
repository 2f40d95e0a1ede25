//! Moving tenants between real clusters: under traffic, a drain, a target
//! that stops mid-copy, and a move the reconciler finishes after a crash.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;

use crate::cluster::start_extra;
use crate::helpers::{envelope, spawn_app, spawn_app_without_rate_limits};
use crate::kit::servers::{agent_for, catalog_server_id, register, server_of, set_server_state};
use crate::kit::{call, id, ok_json};

#[tokio::test]
async fn a_tenant_moves_under_read_write_traffic_without_losing_an_acknowledged_write() {
    let app = spawn_app_without_rate_limits().await;
    let t = app.create_tenant("mover", json!({})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    let db = t["database"].as_str().unwrap().to_string();
    let extra = start_extra();
    let target = register(&app, "pg-target", &extra, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let agent = agent_for(&app, &admin, "before").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (app_url, client, admin, agent, stop) = (
            app.address.clone(),
            app.client.clone(),
            admin.clone(),
            agent.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let (mut acknowledged, mut refused) = (Vec::new(), 0usize);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .post(format!("{app_url}/v1/calls"))
                    .bearer_auth(&admin)
                    .json(&json!({ "agent_id": agent, "status": "completed", "duration": 7 }))
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    201 => acknowledged.push(
                        r.json::<Value>().await.unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    ),
                    503 => refused += 1,
                    other => panic!("a write got {other}: {}", r.text().await.unwrap()),
                }
            }
            (acknowledged, refused)
        })
    };
    let reader = {
        let (app_url, client, admin, stop) = (
            app.address.clone(),
            app.client.clone(),
            admin.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let (mut ok, mut unavailable) = (0usize, 0usize);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .get(format!("{app_url}/v1/agents"))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => ok += 1,
                    503 => unavailable += 1,
                    other => panic!("a read got {other}"),
                }
            }
            (ok, unavailable)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let op = app
        .follow(
            app.admin(
                Method::POST,
                &format!("/v1/tenants/{tid}/move"),
                Some(json!({ "server": target })),
            )
            .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "move");
    assert_eq!(op["tenant_id"], tid.to_string());
    assert_eq!(op["progress"]["done"], 3, "dump, restore, verify: {op}");
    assert!(
        op["progress"]["bytes"].as_i64().unwrap() > 0,
        "the copy's size: {op}"
    );
    let moved = ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{tid}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(moved["status"], "active");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acknowledged, refused) = writer.await.unwrap();
    let (reads, _) = reader.await.unwrap();
    assert!(
        acknowledged.len() > 5 && reads > 5,
        "{} writes, {reads} reads",
        acknowledged.len()
    );
    eprintln!(
        "move under traffic: {} writes acknowledged, {refused} refused during the cutover, {reads} reads",
        acknowledged.len()
    );
    assert_eq!(server_of(&app, &tid).await, target);
    // Every acknowledged write is on the new server; nothing else is.
    let new_db = extra.server.connect(&db).await;
    let ids: Vec<String> = new_db
        .query("SELECT id::text FROM calls ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected = acknowledged.clone();
    expected.sort();
    assert_eq!(
        ids, expected,
        "{refused} writes were refused during the cutover"
    );
    // The old copy is gone from the old server, and the tenant keeps working.
    let old: i64 = app
        .server
        .connect("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old, 0);
    agent_for(&app, &admin, "after").await;
    assert_eq!(app.unfinished_operations().await, 0);
}

#[tokio::test]
async fn a_drain_moves_every_tenant_off_a_server_and_they_keep_their_data() {
    let app = spawn_app().await;
    let extra = start_extra();
    let drained = register(&app, "pg-drained", &extra, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let catalog = catalog_server_id(&app).await;
    // Everything new lands on the extra server while the catalog's drains.
    set_server_state(&app, &catalog, "draining").await;
    let mut tenants = Vec::new();
    for i in 0..3 {
        let t = app.create_tenant(&format!("drained-{i}"), json!({})).await;
        let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
        let agent = agent_for(&app, &admin, &format!("agent-{i}")).await;
        assert_eq!(server_of(&app, t["id"].as_str().unwrap()).await, drained);
        tenants.push((t, admin, agent));
    }
    set_server_state(&app, &catalog, "active").await;
    let op = app
        .follow(
            app.admin(Method::POST, &format!("/v1/servers/{drained}/drain"), None)
                .await,
        )
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "drain");
    assert_eq!(op["progress"]["done"], 3, "{op}");
    assert_eq!(op["progress"]["total"], 3, "{op}");
    assert_eq!(op["result"], format!("/v1/servers/{drained}"));
    let s = ok_json(
        app.admin(Method::GET, &format!("/v1/servers/{drained}"), None)
            .await,
        200,
    )
    .await;
    assert_eq!(s["state"], "draining");
    assert_eq!(s["tenants"], 0, "{s}");
    for (t, admin, agent) in &tenants {
        assert_eq!(server_of(&app, t["id"].as_str().unwrap()).await, catalog);
        let got = ok_json(
            call(
                &app,
                Method::GET,
                &format!("/v1/agents/{agent}"),
                admin,
                None,
                None,
            )
            .await,
            200,
        )
        .await;
        assert_eq!(got["id"].as_str().unwrap(), agent);
    }
}

#[tokio::test]
async fn a_move_whose_target_stops_mid_copy_leaves_the_tenant_working_on_its_old_server() {
    let app = spawn_app().await;
    let t = app.create_tenant("stays-put", json!({})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    let db = t["database"].as_str().unwrap().to_string();
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let agent = agent_for(&app, &admin, "keeper").await;
    // Enough rows that the copy takes a while.
    app.server
        .connect(&db)
        .await
        .batch_execute(&format!(
            "INSERT INTO calls (id, agent_id, status, duration, owner)
             SELECT gen_random_uuid(), '{agent}', 'completed', 1, 'bulk' FROM generate_series(1, 300000)"
        ))
        .await
        .unwrap();
    let mut extra = start_extra();
    let target = register(&app, "pg-doomed", &extra, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = app.catalog_db().await;
    let move_path = format!("/v1/tenants/{tid}/move");
    let move_request = app.admin(Method::POST, &move_path, Some(json!({ "server": target })));
    let killer = async {
        // Stop the target once the restore is writing into it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let busy = extra
                .server
                .connect("postgres")
                .await
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tenant-plane-dump'",
                    &[&db],
                )
                .await
                .unwrap()
                .get::<_, i64>(0);
            if busy > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the copy never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        extra.stop();
    };
    let (response, ()) = tokio::join!(move_request, killer);
    let op = app.follow(response).await;
    assert_eq!(op["state"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "move_failed", "{op}");
    // Still placed, readable and writable where it was.
    let placed: String = before
        .query_one(
            "SELECT db_server_id::text FROM tenants WHERE id = $1::text::uuid",
            &[&tid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(placed, catalog_server_id(&app).await);
    ok_json(
        call(
            &app,
            Method::GET,
            &format!("/v1/agents/{agent}"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    agent_for(&app, &admin, "written-after").await;
    let failed = app
        .catalog_count("SELECT count(*) FROM operations WHERE kind = 'move' AND state = 'failed'")
        .await;
    assert_eq!(failed, 1);
    assert_eq!(app.unfinished_operations().await, 0);
}

#[tokio::test]
async fn the_reconciler_undoes_a_move_that_crashed_before_its_cutover() {
    let app = crate::helpers::spawn_app().await;
    let t = app.create_tenant("crashed-move", json!({})).await;
    let tid: tenant_plane::domain::TenantId = t["id"].as_str().unwrap().parse().unwrap();
    let db = tenant_plane::domain::DbName::for_tenant(tid);
    let admin = app.token(Role::TenantAdmin, Some(tid), None);
    let extra = start_extra();
    let target: uuid::Uuid = register(&app, "pg-half", &extra, json!([])).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // A move that got as far as pausing the source and starting the copy,
    // then its process died.
    let state = app.state().await;
    let catalog = &state.services().catalog;
    let source = catalog
        .get_server(catalog_server_id(&app).await.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let target_server = catalog.get_server(target).await.unwrap().unwrap();
    let provisioner = state.tenants().provisioner();
    provisioner
        .set_writes_paused(&source, &db, true)
        .await
        .unwrap();
    provisioner
        .create_blank_database(&target_server, db.as_str())
        .await
        .unwrap();
    let (status, code, _) = envelope(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "paused", "type": "chat" })),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (503, "tenant_writes_paused"));
    // Begun by a process that died: nobody holds its owner lock. Recorded
    // last, right before the pass, so the app's own takeover (every 2 s)
    // has no time to undo it first.
    catalog
        .begin_operation(
            uuid::Uuid::now_v7(),
            tid,
            tenant_plane::catalog::OpKind::Move,
            &json!({ "source": source.id, "target": target }),
            crate::helpers::dead_owner(),
        )
        .await
        .unwrap();

    let report = state.reconciler().run_once().await.unwrap();
    if report.resumed.is_empty() {
        // On a loaded machine the app's own takeover (the same resume) may
        // still get there first: then wait for it to finish.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while app.unfinished_operations().await > 0 {
            assert!(std::time::Instant::now() < deadline, "{report:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(app.unfinished_operations().await, 0);
    assert!(!provisioner
        .database_exists(&target_server, db.as_str())
        .await
        .unwrap());
    assert_eq!(
        server_of(&app, &tid.to_string()).await,
        source.id.to_string()
    );
    agent_for(&app, &admin, "writes-again").await;
}
