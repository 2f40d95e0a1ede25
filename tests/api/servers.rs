//! Several database servers: registration, placement, and a server that
//! stops, each against real extra clusters (moves and drains: `moves.rs`).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::cluster::start_extra;
use crate::helpers::{envelope, spawn_app, spawn_app_without_rate_limits};
use crate::kit::servers::{agent_for, catalog_server_id, register, server_of, set_server_state};
use crate::kit::{call, id, ok_json};

#[tokio::test]
async fn registering_a_server_checks_it_and_bad_registrations_get_clear_4xx() {
    let app = spawn_app().await;
    let extra = start_extra();
    let server = register(&app, "pg-two", &extra, json!([])).await;
    assert_eq!(server["state"], "active");
    assert_eq!(server["tenants"], 0);
    assert!(server.get("admin_password_enc").is_none());
    assert_eq!(server["connections"]["open"], 0);
    let cases = [
        (
            json!({ "name": "pg-two", "dsn": extra.admin_dsn() }),
            409,
            "server_exists",
        ),
        (
            json!({ "name": "Bad_Name", "dsn": extra.admin_dsn() }),
            422,
            "invalid_body",
        ),
        (
            json!({ "name": "pg-x", "dsn": "not a dsn ===" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "name": "pg-y", "dsn": "postgres://postgres@127.0.0.1:1/postgres" }),
            409,
            "server_unusable",
        ),
        (
            json!({ "name": "pg-z", "dsn": extra.admin_dsn(), "capacity": 0 }),
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let (got, got_code, _) = envelope(
            app.admin(Method::POST, "/v1/servers", Some(body.clone()))
                .await,
        )
        .await;
        assert_eq!((got, got_code.as_str()), (status, code), "{body}");
    }
    let list = ok_json(app.admin(Method::GET, "/v1/servers", None).await, 200).await;
    assert_eq!(list["servers"].as_array().unwrap().len(), 2);
    // Only super_admin manages servers.
    let t = app.create_tenant("not-an-operator", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    let r = call(&app, Method::GET, "/v1/servers", &admin, None, None).await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn placement_spreads_tenants_over_two_servers_and_keeps_a_pinned_tier_on_its_server() {
    let app = spawn_app().await;
    let second = start_extra();
    let pinned = start_extra();
    let second_id = register(&app, "pg-second", &second, json!([])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pinned_id = register(&app, "pg-enterprise", &pinned, json!(["enterprise"])).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let catalog = catalog_server_id(&app).await;
    let mut placed = std::collections::HashMap::<String, usize>::new();
    for i in 0..6 {
        let t = app.create_tenant(&format!("spread-{i}"), json!({})).await;
        *placed
            .entry(server_of(&app, t["id"].as_str().unwrap()).await)
            .or_default() += 1;
        // The tenant works wherever it landed.
        let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
        agent_for(&app, &admin, "placed").await;
    }
    assert_eq!(placed.get(&catalog), Some(&3), "{placed:?}");
    assert_eq!(placed.get(&second_id), Some(&3), "{placed:?}");
    assert_eq!(
        placed.get(&pinned_id),
        None,
        "standard tenants stay off the pinned server"
    );
    let big = ok_json(
        app.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Big", "slug": "big-one", "tier": "enterprise" })),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        server_of(&app, big["id"].as_str().unwrap()).await,
        pinned_id
    );
    // A draining server takes no new tenant.
    set_server_state(&app, &second_id, "draining").await;
    let t = app.create_tenant("after-drain-mark", json!({})).await;
    assert_eq!(server_of(&app, t["id"].as_str().unwrap()).await, catalog);
}

#[tokio::test]
async fn tenants_on_a_stopped_server_get_fast_503s_while_others_work_and_recover_when_it_returns() {
    let app = spawn_app_without_rate_limits().await;
    let here = app.create_tenant("stays-up", json!({})).await;
    let mut extra = start_extra();
    let catalog = catalog_server_id(&app).await;
    register(&app, "pg-flaky", &extra, json!([])).await;
    set_server_state(&app, &catalog, "draining").await;
    let there = app.create_tenant("goes-down", json!({})).await;
    set_server_state(&app, &catalog, "active").await;
    let here_admin = app.token(Role::TenantAdmin, Some(id(&here)), None);
    let there_admin = app.token(Role::TenantAdmin, Some(id(&there)), None);
    agent_for(&app, &there_admin, "warm").await;
    // Load on the tenant whose server stays up, for the whole outage.
    let stop_load = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (url, client, token, stop, served) = (
            app.address.clone(),
            app.client.clone(),
            here_admin.clone(),
            stop_load.clone(),
            served.clone(),
        );
        tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .get(format!("{url}/v1/agents"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => {
                        served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    other => errors.push(other),
                }
            }
            errors
        })
    };
    extra.stop();
    let served_before_outage = served.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..5 {
        let started = Instant::now();
        let r = call(&app, Method::GET, "/v1/agents", &there_admin, None, None).await;
        let elapsed = started.elapsed();
        assert_eq!(r.status(), 503);
        assert!(r.headers().get("retry-after").is_some());
        assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
        ok_json(
            call(&app, Method::GET, "/v1/agents", &here_admin, None, None).await,
            200,
        )
        .await;
    }
    // The other server's tenant keeps being served during the outage.
    let deadline = Instant::now() + Duration::from_secs(10);
    while served.load(std::sync::atomic::Ordering::Relaxed) < served_before_outage + 10 {
        assert!(
            Instant::now() < deadline,
            "the load on the other server stalled during the outage"
        );
        tokio::task::yield_now().await;
    }
    extra.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(&app, Method::GET, "/v1/agents", &there_admin, None, None).await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < deadline, "the tenant did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_load.store(true, std::sync::atomic::Ordering::Relaxed);
    let errors = load.await.unwrap();
    assert!(errors.is_empty(), "the other tenant got errors {errors:?}");
}
