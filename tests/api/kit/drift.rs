//! Drift through the API: a scan to its end, a tenant's record, a change
//! made by hand in a tenant database, the event feed read until an event,
//! and the sessions a server holds on a set of databases.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::kit::ok_json;

/// `POST /v1/migrations/drift/scans?wait=true`: the finished scan's summary.
pub async fn scan(app: &TestApp) -> Value {
    ok_json(
        app.admin(Method::POST, "/v1/migrations/drift/scans?wait=true", None)
            .await,
        200,
    )
    .await
}

/// `GET /v1/tenants/{id}/drift`.
pub async fn tenant_drift(app: &TestApp, id: &str) -> Value {
    ok_json(
        app.admin(Method::GET, &format!("/v1/tenants/{id}/drift"), None)
            .await,
        200,
    )
    .await
}

/// `GET /v1/migrations/drift`.
pub async fn fleet_drift(app: &TestApp) -> Value {
    ok_json(
        app.admin(Method::GET, "/v1/migrations/drift", None).await,
        200,
    )
    .await
}

/// Runs `sql` in tenant database `db` as the administrator: a change made
/// by hand, behind the service's back.
pub async fn by_hand(app: &TestApp, db: &str, sql: &str) {
    app.server
        .connect(db)
        .await
        .batch_execute(sql)
        .await
        .unwrap();
}

/// The objects of a drift view's diff as (kind, name, change, ddl).
pub fn objects(drift: &Value) -> Vec<(String, String, String, Option<String>)> {
    drift["diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (
                text("kind"),
                text("name"),
                text("change"),
                d["ddl"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Opens the SSE event feed (`GET /v1/events`) and reads it until an event
/// of `kind` about `tenant` comes; returns that event's data.
pub async fn open_feed(app: &TestApp) -> reqwest::Response {
    let response = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(app.super_admin_token())
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

pub async fn read_until(feed: reqwest::Response, kind: &str, tenant: &str) -> Value {
    let mut body = feed.bytes_stream();
    let mut buffer = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let is_kind = block.lines().any(|l| l == format!("event: {kind}"));
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str::<Value>(d).ok());
            if let (true, Some(data)) = (is_kind, data) {
                if data["tenant_id"] == tenant {
                    return data;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, body.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} for {tenant} in the feed"))
            .expect("the feed stays open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// Client sessions open now on any of `databases`, or on a scratch
/// database of the expected schemas tagged with `installation`. Only
/// client backends: an autovacuum worker on a new tenant's tables shows
/// in `pg_stat_activity` with its database too, and is nobody's session.
pub async fn sessions_on(
    admin: &tokio_postgres::Client,
    databases: &[String],
    installation: &str,
) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_database d ON d.oid = a.datid
              WHERE a.backend_type = 'client backend'
                AND (d.datname = ANY($1)
                     OR (d.datname LIKE 'ai\\_care\\_expected\\_%'
                         AND shobj_description(d.oid, 'pg_database') = $2))",
            &[
                &databases,
                &format!("tenant-plane installation {installation}"),
            ],
        )
        .await
        .unwrap()
        .get(0)
}
