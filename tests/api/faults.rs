//! Faults: SIGTERM with a request in flight, kill -9 during provisioning,
//! and a catalog server that restarts under the data plane.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use tenant_plane::auth::Role;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cluster::{start_extra, TestServer};
use crate::helpers::{sign, spawn_app_on, test_settings, JWT_SECRET, MASTER_KEY};
use crate::kit::{call, id, ok_json};

/// `tenant-plane serve` against `catalog` on `server`; returns the child
/// and its base URL once it listens.
async fn serve(
    server: &TestServer,
    catalog: &str,
    extra_env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TENANT_PLANE_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("serve")
        .env(
            "TENANT_PLANE_DATABASE_URL",
            server.url(catalog).expose_secret(),
        )
        .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET)
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .env("TENANT_PLANE_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("tenant-plane listening on ") {
                return url.to_string();
            }
        }
        panic!("serve exited before listening");
    })
    .await
    .expect("serve started");
    (child, base)
}

fn signal(child: &tokio::process::Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, sig).unwrap();
}

fn admin_token() -> String {
    sign(tenant_plane::auth::Claims::new(
        "faults",
        Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(3600),
    ))
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_closes_every_session() {
    let server = crate::cluster::shared().clone();
    // Named like every test catalog, so a later run on a shared server sweeps it.
    let catalog = crate::cluster::catalog_name("term_");
    let (mut child, base) = serve(&server, &catalog, &[]).await;
    let client = reqwest::Client::new();
    let token = admin_token();
    // Hold the catalog's tenants table, so a create waits in flight.
    let mut blocker = server.connect(&catalog).await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE tenants IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let in_flight = tokio::spawn({
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            client
                .post(format!("{base}/v1/tenants"))
                .bearer_auth(token)
                .json(&json!({ "name": "In flight", "slug": "in-flight" }))
                .send()
                .await
                .unwrap()
        }
    });
    let watcher = server.connect("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&catalog],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the create never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    // New connections are refused while the one request finishes.
    let refused_deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
        {
            Err(e) if e.is_connect() => break,
            _ => {
                assert!(
                    Instant::now() < refused_deadline,
                    "still accepting after SIGTERM"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    lock.commit().await.unwrap();
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("serve stopped")
        .unwrap();
    assert!(status.success(), "{status}");
    drop(blocker);
    // Every session the service held (catalog, router, provisioner) is gone.
    // A backend leaves pg_stat_activity a moment after its client closed.
    let gone_by = Instant::now() + Duration::from_secs(5);
    loop {
        let sessions: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = $1 AND application_name LIKE 'tenant-plane%'",
                &[&catalog],
            )
            .await
            .unwrap()
            .get(0);
        if sessions == 0 {
            break;
        }
        assert!(
            Instant::now() < gone_by,
            "{sessions} sessions still open 5 s after the service stopped"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn kill_9_during_twenty_provisionings_leaves_only_active_or_failed_tenants_and_no_orphans() {
    let extra = tokio::task::spawn_blocking(start_extra).await.unwrap();
    let catalog = "killed_catalog";
    let (mut child, base) = serve(&extra.server, catalog, &[]).await;
    let client = reqwest::Client::new();
    let token = admin_token();
    let creates: Vec<_> = (0..20)
        .map(|i| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                let _ = client
                    .post(format!("{base}/v1/tenants"))
                    .bearer_auth(token)
                    .json(&json!({ "name": format!("Killed {i}"), "slug": format!("killed-{i}") }))
                    .send()
                    .await;
            })
        })
        .collect();
    // Kill once some databases exist and some creates are still running.
    let watcher = extra.server.connect("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let made: i64 = watcher
            .query_one("SELECT count(*) FROM pg_database WHERE datname LIKE 'ai_care_tenant_%' AND datname <> 'ai_care_tenant_template'", &[])
            .await
            .unwrap()
            .get(0);
        if made >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no tenant database appeared");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&child, nix::sys::signal::Signal::SIGKILL);
    child.wait().await.unwrap();
    for c in creates {
        let _ = c.await;
    }
    let catalog_db = extra.server.connect(catalog).await;
    let unfinished: i64 = catalog_db
        .query_one(
            "SELECT count(*) FROM operations WHERE state IN ('pending', 'running')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Second life, with the default stale limit (60 s): the dead process's
    // lease ended with it, so the start-up pass takes its creates over at
    // once, before the service listens.
    let restarted = Instant::now();
    let (mut again, _) = serve(&extra.server, catalog, &[]).await;
    let settled_in = restarted.elapsed();
    signal(&again, nix::sys::signal::Signal::SIGTERM);
    again.wait().await.unwrap();
    let states: Vec<(String, String)> = catalog_db
        .query("SELECT slug, status FROM tenants ORDER BY slug", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        states.iter().all(|(_, s)| s == "active" || s == "failed"),
        "{states:?} ({unfinished} operations were cut off)"
    );
    let still: i64 = catalog_db
        .query_one(
            "SELECT count(*) FROM operations WHERE state IN ('pending', 'running')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(still, 0);
    // Doctor, as an operator would run it: nothing orphaned, nothing missing.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenant-plane"))
        .args(["doctor", "--json"])
        .env(
            "TENANT_PLANE_DATABASE_URL",
            extra.server.url(catalog).expose_secret(),
        )
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY)
        .output()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    for key in [
        "orphan_databases",
        "orphan_roles",
        "missing_databases",
        "stuck_operations",
    ] {
        assert_eq!(
            report[key].as_array().map(Vec::len),
            Some(0),
            "{key}: {report}"
        );
    }
    assert!(
        settled_in < Duration::from_secs(10),
        "settled {settled_in:?} after the restart"
    );
    eprintln!(
        "kill -9: {unfinished} of 20 creates cut off; settled {:.2} s after the restart: {states:?}",
        settled_in.as_secs_f64()
    );
}

#[tokio::test]
async fn a_catalog_restart_leaves_cached_tenants_served_and_control_calls_fail_fast_then_recover() {
    // The catalog on a server of its own; tenants on another.
    let mut catalog_server = tokio::task::spawn_blocking(start_extra).await.unwrap();
    let tenants_server = tokio::task::spawn_blocking(start_extra).await.unwrap();
    let (mut settings, _) = test_settings();
    settings.database_url = Some(catalog_server.server.url("restarting_catalog"));
    let app = spawn_app_on(
        settings,
        "restarting_catalog".into(),
        catalog_server.server.clone(),
    )
    .await;
    let catalog_id = app
        .catalog_db()
        .await
        .query_one("SELECT id::text FROM db_servers WHERE is_catalog", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    crate::kit::servers::register(&app, "pg-tenants", &tenants_server, json!([])).await;
    crate::kit::servers::set_server_state(&app, &catalog_id, "draining").await;
    let t = app.create_tenant("outlives-catalog", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "warm", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
    ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;

    catalog_server.stop();
    for _ in 0..10 {
        ok_json(
            call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
            200,
        )
        .await;
        ok_json(
            call(
                &app,
                Method::POST,
                "/v1/agents",
                &admin,
                None,
                Some(json!({ "name": "during", "type": "chat" })),
            )
            .await,
            201,
        )
        .await;
    }
    let started = Instant::now();
    let r = app.admin(Method::GET, "/v1/tenants", None).await;
    assert_eq!(r.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    catalog_server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if app.admin(Method::GET, "/v1/tenants", None).await.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the control plane did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
}
