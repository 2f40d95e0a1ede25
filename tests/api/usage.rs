//! Usage per tenant: requests counted by plane and flushed as one row per
//! tenant and hour, storage sampled from the database server, the usage
//! report (JSON and CSV), and quotas that refuse writes with 429.

use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::Role;

use crate::helpers::{spawn_app_with, TestApp};
use crate::kit::{call, expect_error, id, ok_json};

/// The catalog's request counts of `tenant` (data, control), every hour.
async fn counted(app: &TestApp, tenant: tenant_plane::domain::TenantId) -> (i64, i64) {
    let row = app
        .catalog_db()
        .await
        .query_one(
            "SELECT coalesce(sum(requests_data), 0)::int8, coalesce(sum(requests_control), 0)::int8
               FROM usage_hourly WHERE tenant_id = $1",
            &[&tenant.as_uuid()],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn list_agents(app: &TestApp, token: &str) -> reqwest::Response {
    call(app, Method::GET, "/v1/agents", token, None, None).await
}

async fn add_agent(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    let body = json!({ "name": name, "type": "chat" });
    call(app, Method::POST, "/v1/agents", token, None, Some(body)).await
}

#[tokio::test]
async fn requests_are_counted_by_plane_once_per_tenant_and_hour_and_storage_matches_the_database_size(
) {
    let app = spawn_app_with(|s| s.usage.flush_secs = 3600).await;
    let tenant = app.create_tenant("metered", json!({})).await;
    let other = app.create_tenant("quiet", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&tenant)), None);
    for _ in 0..7 {
        assert_eq!(list_agents(&app, &admin).await.status(), 200);
    }
    for _ in 0..3 {
        let path = format!("/v1/tenants/{}", id(&tenant));
        assert_eq!(app.admin(Method::GET, &path, None).await.status(), 200);
    }
    // Refused before it reached the tenant: counted for nobody.
    let stranger = app.token(Role::TenantAdmin, Some(id(&other)), None);
    let path = format!("/v1/tenants/{}", id(&tenant));
    let refused = call(&app, Method::GET, &path, &stranger, None, None).await;
    assert!(matches!(refused.status().as_u16(), 403 | 404));
    let usage = app.state().await.services().usage.clone();
    usage.flush().await;
    assert_eq!(counted(&app, id(&tenant)).await, (7, 3));
    assert_eq!(counted(&app, id(&other)).await, (0, 0));
    let rows = app
        .catalog_count(&format!(
            "SELECT count(*) FROM usage_hourly WHERE tenant_id = '{}'",
            id(&tenant)
        ))
        .await;
    assert_eq!(rows, 1, "one row for the tenant's hour");
    // A second flush with nothing new adds nothing.
    usage.flush().await;
    assert_eq!(counted(&app, id(&tenant)).await, (7, 3));

    // Storage: the sample's bytes against the server's own answer.
    let db = tenant["database"].as_str().unwrap();
    let sampled = usage.sample().await.unwrap();
    assert!(sampled >= 2, "both tenants sampled: {sampled}");
    let actual: i64 = app
        .catalog_db()
        .await
        .query_one("SELECT pg_database_size($1)", &[&db])
        .await
        .unwrap()
        .get(0);
    let report = ok_json(
        app.admin(
            Method::GET,
            &format!("/v1/tenants/{}/usage?granularity=hour", id(&tenant)),
            None,
        )
        .await,
        200,
    )
    .await;
    let point = &report["points"][0];
    let stored = point["storage_bytes"].as_i64().expect("a storage sample");
    let off = (stored - actual).abs() as f64 / actual as f64;
    assert!(
        off <= 0.01,
        "storage {stored} against pg_database_size {actual}"
    );
    assert_eq!(point["requests_data"], 7, "{report}");

    // CSV for billing: a header, then the same hour.
    let csv = app
        .request(Method::GET, &format!("/v1/tenants/{}/usage", id(&tenant)))
        .bearer(&app.super_admin_token())
        .header("accept", "text/csv")
        .send()
        .await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("tenant_id,start,requests_data"),
        "{text}"
    );
    assert!(lines[1].starts_with(&format!("{},", id(&tenant))), "{text}");

    // The fleet's top tenants by requests: this one first.
    let top = ok_json(
        app.admin(Method::GET, "/v1/usage/top?metric=requests&limit=5", None)
            .await,
        200,
    )
    .await;
    assert_eq!(
        top["tenants"][0]["tenant_id"],
        id(&tenant).to_string(),
        "{top}"
    );
    // A tenant admin reads its own usage, never another's nor the fleet's.
    let own = call(
        &app,
        Method::GET,
        &format!("/v1/tenants/{}/usage", id(&tenant)),
        &admin,
        None,
        None,
    )
    .await;
    assert_eq!(own.status(), 200);
    let theirs = call(
        &app,
        Method::GET,
        &format!("/v1/tenants/{}/usage", id(&other)),
        &admin,
        None,
        None,
    )
    .await;
    assert!(matches!(theirs.status().as_u16(), 403 | 404));
    let fleet = call(&app, Method::GET, "/v1/usage/top", &admin, None, None).await;
    assert_eq!(fleet.status(), 403);
}

#[tokio::test]
async fn a_tenant_over_its_storage_quota_gets_429_on_writes_while_its_reads_and_other_tenants_go_on(
) {
    let app = spawn_app_with(|s| s.usage.flush_secs = 3600).await;
    // A fresh database holds several MiB: a 1 MiB quota is over at once.
    let full = app
        .create_tenant("full", json!({ "features": { "maxStorageMb": 1 } }))
        .await;
    let roomy = app.create_tenant("roomy", json!({})).await;
    let (full_admin, roomy_admin) = (
        app.token(Role::TenantAdmin, Some(id(&full)), None),
        app.token(Role::TenantAdmin, Some(id(&roomy)), None),
    );
    assert_eq!(add_agent(&app, &full_admin, "before").await.status(), 201);
    let usage = app.state().await.services().usage.clone();
    usage.sample().await.unwrap();
    // The route hears of the breach from the catalog's notice.
    let refused = wait_for_status(&app, &full_admin, 429).await;
    let body: Value = refused;
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    assert_eq!(
        body["error"]["details"]["quota"]["quota"], "storage_bytes",
        "{body}"
    );
    assert_eq!(
        body["error"]["details"]["quota"]["limit"],
        1024 * 1024,
        "{body}"
    );
    assert!(body["error"]["details"]["quota"]["resets_at"].is_null());
    assert_eq!(
        list_agents(&app, &full_admin).await.status(),
        200,
        "reads go on"
    );
    assert_eq!(
        add_agent(&app, &roomy_admin, "free").await.status(),
        201,
        "other tenants too"
    );
    // The report says so too.
    let path = format!("/v1/tenants/{}/usage", id(&full));
    let report = ok_json(app.admin(Method::GET, &path, None).await, 200).await;
    let storage = &report["quotas"][0];
    assert_eq!(storage["quota"], "storage_bytes", "{report}");
    assert_eq!(storage["exceeded"], true, "{report}");
    assert!(storage["used"].as_i64().unwrap() > storage["limit"].as_i64().unwrap());

    // The 80 % warning fired once, however many samples see it.
    usage.sample().await.unwrap();
    let warnings = app
        .catalog_count(&format!(
            "SELECT count(*) FROM events WHERE type = 'tenant.quota_warning' AND tenant_id = '{}'",
            id(&full)
        ))
        .await;
    assert_eq!(warnings, 1);

    // Raised above its size, the tenant writes again at the next sample.
    let path = format!("/v1/tenants/{}", id(&full));
    let raise = json!({ "settings": { "features": { "maxStorageMb": 1024 } } });
    assert_eq!(
        app.admin(Method::PATCH, &path, Some(raise)).await.status(),
        200
    );
    usage.sample().await.unwrap();
    wait_for_status(&app, &full_admin, 201).await;
}

#[tokio::test]
async fn a_tenant_over_its_monthly_requests_is_refused_writes_until_the_month_ends() {
    let app = spawn_app_with(|s| s.usage.flush_secs = 3600).await;
    let busy = app
        .create_tenant("busy", json!({ "features": { "maxRequestsPerMonth": 5 } }))
        .await;
    let admin = app.token(Role::TenantAdmin, Some(id(&busy)), None);
    for _ in 0..5 {
        assert_eq!(list_agents(&app, &admin).await.status(), 200);
    }
    app.state().await.services().usage.flush().await;
    let body = wait_for_status(&app, &admin, 429).await;
    let quota = &body["error"]["details"]["quota"];
    assert_eq!(quota["quota"], "requests_per_month", "{body}");
    let resets: chrono::DateTime<chrono::Utc> =
        quota["resets_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        resets.format("%d %H:%M:%S").to_string(),
        "01 00:00:00",
        "the next month's start"
    );
    assert!(resets > chrono::Utc::now());
    assert_eq!(list_agents(&app, &admin).await.status(), 200, "reads go on");
    expect_error(add_agent(&app, &admin, "x").await, 429, "quota_exceeded").await;
}

/// Adds agents until one answers `status` (the route follows the catalog's
/// notice within moments); its body.
async fn wait_for_status(app: &TestApp, token: &str, status: u16) -> Value {
    for n in 0..100 {
        let answer = add_agent(app, token, &format!("try-{n}")).await;
        if answer.status().as_u16() == status {
            return answer.json().await.unwrap_or(Value::Null);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {status} within 5 s");
}

#[tokio::test]
async fn with_request_metering_off_no_request_is_counted_and_sampling_goes_on() {
    let app = spawn_app_with(|s| s.usage.meter_requests = false).await;
    let tenant = app.create_tenant("unmetered", json!({})).await;
    let admin = app.token(Role::TenantAdmin, Some(id(&tenant)), None);
    assert_eq!(list_agents(&app, &admin).await.status(), 200);
    let usage = app.state().await.services().usage.clone();
    usage.flush().await;
    assert_eq!(counted(&app, id(&tenant)).await, (0, 0));
    assert!(usage.sample().await.unwrap() >= 1);
}

#[tokio::test]
async fn the_sampling_loop_finds_a_tenant_over_its_storage_quota_within_one_interval() {
    let every = 3;
    let app = spawn_app_with(|s| s.usage.sample_secs = every).await;
    // Over at once: a fresh database holds several MiB.
    let full = app
        .create_tenant("full-loop", json!({ "features": { "maxStorageMb": 1 } }))
        .await;
    let over_at = chrono::Utc::now();
    let admin = app.token(Role::TenantAdmin, Some(id(&full)), None);
    // Nothing samples by hand: the service's own loop has to find it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3 * every);
    let catalog = app.catalog_db().await;
    let since: chrono::DateTime<chrono::Utc> = loop {
        let found = catalog
            .query_opt(
                "SELECT since FROM quota_breaches WHERE tenant_id = $1 AND quota = 'storage_bytes'",
                &[&id(&full).as_uuid()],
            )
            .await
            .unwrap();
        if let Some(row) = found {
            break row.get(0);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no breach in 3 intervals"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let refused = wait_for_status(&app, &admin, 429).await;
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    let took = (since - over_at).num_milliseconds();
    // One interval, and the sample's own time (a second, generously).
    assert!(
        took <= (every as i64) * 1000 + 1000,
        "found {took} ms after it was over"
    );
    assert_eq!(list_agents(&app, &admin).await.status(), 200, "reads go on");
}
