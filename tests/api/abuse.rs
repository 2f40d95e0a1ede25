//! Abuse costs the attacker more than the service: denials are counted per
//! minute and throttled per client address, forwarded addresses count only
//! from trusted proxies, old rows are pruned, keys never grant more than
//! their minter, slow queries are cut off, and the CLI is audited too.

use reqwest::Method;
use serde_json::json;
use tenant_plane::auth::Role;

use crate::helpers::{envelope, spawn_app, spawn_app_with, TestApp};
use crate::kit::cli::cli;
use crate::kit::{call, id, ok_json};

async fn bad_token(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url("/v1/tenants"))
        .bearer_auth("not-a-token");
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_flood_of_bad_tokens_is_counted_in_a_few_rows_and_throttled_per_address() {
    let app = spawn_app_with(|s| s.http.denials_per_minute = 50).await;
    let audit_before = app.catalog_count("SELECT count(*) FROM audit_log").await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..300 {
        let response = bad_token(&app, None).await;
        let status = response.status().as_u16();
        if status == 429 {
            assert_eq!(response.headers()["retry-after"], "60");
            let (_, code, _) = envelope(response).await;
            assert_eq!(code, "too_many_denials");
        }
        *statuses.entry(status).or_default() += 1;
    }
    // 50 refusals a minute per address; the rest of the bad tokens are
    // throttled.
    assert_eq!(statuses.get(&401), Some(&50), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&250), "{statuses:?}");
    // A good token from the same address is served: other people's denials
    // never refuse a valid credential.
    let served = app.get("/v1/tenants", Some(&app.super_admin_token())).await;
    assert_eq!(served.status(), 200);
    let denials = app.denials().await;
    let total: i64 = denials.iter().map(|d| d.3).sum();
    assert_eq!(total, 300, "{denials:?}");
    let rows = app.catalog_count("SELECT count(*) FROM denials").await;
    assert!(
        rows <= 4,
        "{rows} rows for 300 denials: one per minute and reason"
    );
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM audit_log").await,
        audit_before,
        "denials write no audit rows one by one"
    );
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_when_the_peer_is_a_trusted_proxy() {
    // Untrusted: every forwarded address is the same client (the peer).
    let app = spawn_app_with(|s| s.http.denials_per_minute = 3).await;
    for i in 0..3 {
        let r = bad_token(&app, Some(&format!("203.0.113.{i}"))).await;
        assert_eq!(r.status(), 401);
    }
    assert_eq!(bad_token(&app, Some("203.0.113.99")).await.status(), 429);
    let denials = app.state().await;
    denials.denials().flush().await.unwrap();
    let sources: Vec<String> = app
        .catalog_db()
        .await
        .query("SELECT DISTINCT source FROM denials", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(sources, vec!["127.0.0.1".to_string()]);

    // Trusted: each forwarded client has its own minute.
    let app = spawn_app_with(|s| {
        s.http.denials_per_minute = 3;
        s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    for i in 0..6 {
        let r = bad_token(&app, Some(&format!("198.51.100.7, 203.0.113.{i}"))).await;
        assert_eq!(r.status(), 401, "client {i} has refusals left");
    }
    for _ in 0..3 {
        assert_eq!(bad_token(&app, Some("203.0.113.50")).await.status(), 401);
    }
    assert_eq!(bad_token(&app, Some("203.0.113.50")).await.status(), 429);
    // The audit of a change records the forwarded client, not the proxy.
    let t = app.create_tenant("forwarded", json!({})).await;
    let suspend = app
        .client
        .post(app.url(&format!(
            "/v1/tenants/{}/suspend",
            t["id"].as_str().unwrap()
        )))
        .bearer_auth(app.super_admin_token())
        .header("x-forwarded-for", "192.0.2.10")
        .send()
        .await
        .unwrap();
    assert_eq!(suspend.status(), 200);
    let ip: String = app
        .catalog_db()
        .await
        .query_one(
            "SELECT ip_address FROM audit_log WHERE action = 'tenants.suspend'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ip, "192.0.2.10");
}

#[tokio::test]
async fn the_reconciler_prunes_old_audit_events_idempotency_keys_operations_and_runs_and_keeps_recent_ones(
) {
    let app = spawn_app().await;
    let t = app.create_tenant("retained", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let catalog = app.catalog_db().await;
    // Age a copy of every kind of row past its retention, keep the originals new.
    catalog
        .batch_execute(&format!(
            "INSERT INTO audit_log (at, user_id, action, resource, result)
                  SELECT now() - interval '401 days', 'old', 'old.event', 'x', 'success'
                    FROM generate_series(1, 2500);
             INSERT INTO denials (minute, source, route, reason, tenant_id, user_id, count)
                  VALUES (now() - interval '401 days', '192.0.2.1', '/v1/tenants', 'forbidden',
                          '00000000-0000-0000-0000-000000000000', '', 7);
             INSERT INTO idempotency_keys (principal, key, request_hash, response_status, response_body, created_at, completed_at)
                  VALUES ('old', 'k1', 'h', 201, '{{}}', now() - interval '2 days', now() - interval '25 hours'),
                         ('new', 'k2', 'h', 201, '{{}}', now(), now());
             UPDATE operations SET finished_at = now() - interval '91 days'
              WHERE tenant_id = '{tid}' AND state = 'succeeded';"
        ))
        .await
        .unwrap();
    let old_operations = app
        .catalog_count(
            "SELECT count(*) FROM operations WHERE finished_at < now() - interval '90 days'",
        )
        .await;
    assert!(old_operations >= 1);
    let state = app.state().await;
    let report = state.reconciler().run_once().await.unwrap();
    // Batches of 1000: 2500 old events take three statements, all in one pass.
    assert_eq!(report.pruned.audit_events, 2500, "{:?}", report.pruned);
    assert_eq!(report.pruned.denials, 1);
    assert_eq!(report.pruned.idempotency_keys, 1);
    assert_eq!(report.pruned.operations as i64, old_operations);
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM audit_log WHERE action = 'old.event'")
            .await,
        0
    );
    assert!(
        app.catalog_count("SELECT count(*) FROM audit_log WHERE action = 'tenants.create'")
            .await
            >= 1,
        "recent events stay"
    );
    assert_eq!(
        app.catalog_count("SELECT count(*) FROM idempotency_keys WHERE key = 'k2'")
            .await,
        1
    );
    // A second pass finds nothing more.
    let again = state.reconciler().run_once().await.unwrap();
    assert!(again.pruned.is_empty(), "{:?}", again.pruned);
}

#[tokio::test]
async fn a_query_past_the_tiers_statement_timeout_answers_503_and_its_session_returns_clean() {
    let app = spawn_app_with(|s| {
        s.router.statement_timeout_standard_ms = 300;
        // One session, so the request after the timeout reuses it.
        s.router.pool_size_standard = Some(1);
    })
    .await;
    let t = app.create_tenant("slowed", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&t)), None);
    ok_json(
        call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
        200,
    )
    .await;
    // The session carries the tier's limits from its start.
    let state = app.state().await;
    let route = state.tenancy().router().route(id(&t)).await.unwrap();
    {
        let conn = state.tenancy().router().connection(&route).await.unwrap();
        let timeout: String = conn
            .query_one("SHOW statement_timeout", &[])
            .await
            .unwrap()
            .get(0);
        let idle: String = conn
            .query_one("SHOW idle_in_transaction_session_timeout", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!((timeout.as_str(), idle.as_str()), ("300ms", "10s"));
    }
    // Another session holds the agents table, so the read waits past its limit.
    let mut blocker = app.server.connect(t["database"].as_str().unwrap()).await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, code, _) =
        envelope(call(&app, Method::GET, "/v1/agents", &admin, None, None).await).await;
    assert_eq!((status, code.as_str()), (503, "query_timeout"));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    tx.rollback().await.unwrap();
    // The same single session serves the next request: nothing left aborted.
    for _ in 0..3 {
        ok_json(
            call(&app, Method::GET, "/v1/agents", &admin, None, None).await,
            200,
        )
        .await;
    }
    ok_json(
        call(
            &app,
            Method::POST,
            "/v1/agents",
            &admin,
            None,
            Some(json!({ "name": "after", "type": "chat" })),
        )
        .await,
        201,
    )
    .await;
}

#[tokio::test]
async fn every_cli_change_writes_the_same_write_ahead_audit_record_with_a_cli_actor() {
    let app = spawn_app().await;
    let (code, out, err) = cli(
        &app,
        &[
            "tenant", "create", "--name", "From CLI", "--slug", "from-cli", "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tid = created["id"].as_str().unwrap();
    for args in [
        vec!["tenant", "suspend", tid],
        vec!["tenant", "resume", tid],
        vec!["tenant", "delete", tid],
        vec!["tenant", "restore", tid],
        vec!["migrate", "--tenant", tid],
    ] {
        let (code, out, err) = cli(&app, &args).await;
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    let rows: Vec<(String, String, String)> = app
        .catalog_db()
        .await
        .query(
            "SELECT action, user_id, result FROM audit_log WHERE user_id LIKE 'cli:%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "tenants.create",
            "tenants.suspend",
            "tenants.resume",
            "tenants.delete",
            "tenants.restore",
            "tenants.migrate"
        ],
        "{rows:?}"
    );
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    for (action, actor, result) in &rows {
        assert_eq!(actor, &format!("cli:{user}@{host}"), "{action}");
        assert_eq!(result, "success", "{action}");
    }
}
