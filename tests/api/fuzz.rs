//! Generated requests against the running service: every route the
//! published spec lists (and one it does not), with
//! malformed bodies, odd path segments, bad and foreign credentials and
//! headers. None may get a 5xx or hang, every error has the envelope, and a
//! request that did not succeed changes no data.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};
use tenant_plane::auth::{Claims, Role};

use crate::helpers::{sign, spawn_app_with, TestApp};
use crate::kit::fuzz_inputs::{generated, Body, Credential, Segment};
use crate::kit::id;

struct Fixture {
    own: String,
    other: String,
    own_sub: String,
    own_db: String,
}

impl Fixture {
    fn segment(&self, s: &Segment) -> String {
        match s {
            Segment::OwnTenant => self.own.clone(),
            Segment::OtherTenant => self.other.clone(),
            Segment::RandomUuid => uuid::Uuid::new_v4().to_string(),
            Segment::Text(t) => t.clone(),
        }
    }

    fn credential(&self, app: &TestApp, c: &Credential) -> Option<String> {
        let own = self.own.parse().unwrap();
        match c {
            Credential::None => None,
            Credential::Role(Role::SuperAdmin) => Some(app.super_admin_token()),
            Credential::Role(Role::SubtenantAdmin) => Some(app.token(
                Role::SubtenantAdmin,
                Some(own),
                Some(self.own_sub.parse().unwrap()),
            )),
            Credential::Role(role) => Some(app.token(*role, Some(own), None)),
            Credential::OtherTenantAdmin => {
                Some(app.token(Role::TenantAdmin, Some(self.other.parse().unwrap()), None))
            }
            Credential::Expired => {
                let mut claims = Claims::new(
                    "fuzz",
                    Role::TenantAdmin,
                    Some(own),
                    None,
                    Duration::from_secs(60),
                );
                claims.exp = 1;
                Some(sign(claims))
            }
            Credential::Garbage(g) => Some(g.clone()),
            Credential::FakeApiKey => Some(format!("tpk_{}", "a".repeat(40))),
        }
    }
}

/// Checksums of everything a request could change (audit and operation
/// records excepted: a refusal is recorded on purpose).
struct Snapshots {
    catalog: tokio_postgres::Client,
    tenant: tokio_postgres::Client,
}

const CATALOG_STATE: &str = "SELECT string_agg(t || ':' || s, ',' ORDER BY t) FROM (
    SELECT 'tenants' AS t, md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) AS s FROM tenants x
    UNION ALL SELECT 'domains', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM tenant_domains x
    UNION ALL SELECT 'api_keys', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM api_keys x
    UNION ALL SELECT 'servers', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM db_servers x
    UNION ALL SELECT 'runs', md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM migration_runs x) s";

const TENANT_STATE: &str =
    "SELECT (SELECT md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM agents x)
    || (SELECT md5(coalesce(string_agg(x::text, '' ORDER BY x::text), '')) FROM calls x)";

impl Snapshots {
    /// Waits for work a successful request left running in the background
    /// (a fleet run, an operation) to finish, so later diffs are this
    /// request's alone.
    async fn settle(&self) {
        for _ in 0..200 {
            let busy: i64 = self
                .catalog
                .query_one(
                    "SELECT (SELECT count(*) FROM migration_runs WHERE state IN ('pending', 'running'))
                          + (SELECT count(*) FROM operations WHERE state IN ('pending', 'running'))",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if busy == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("background work did not finish within 10 s");
    }

    async fn take(&self) -> (String, Option<String>) {
        let catalog: String = self
            .catalog
            .query_one(CATALOG_STATE, &[])
            .await
            .unwrap()
            .get(0);
        // The tenant's database may be gone (a generated purge succeeded).
        let tenant = self
            .tenant
            .query_one(TENANT_STATE, &[])
            .await
            .ok()
            .map(|r| r.get(0));
        (catalog, tenant)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_generated_requests_get_no_5xx_no_hang_and_change_nothing_unless_they_succeed()
{
    // Denied requests are most of what is sent, so the per-address denial
    // throttle (tested in denials.rs) would answer nearly all with 429.
    let app = spawn_app_with(|s| s.http.denials_per_minute = 1_000_000).await;
    let own = app.create_tenant("fuzz-own", json!({})).await;
    let other = app.create_tenant("fuzz-other", json!({})).await;
    let sub = app
        .create_subtenant(own["id"].as_str().unwrap(), "fuzz-own-sub")
        .await;
    let fixture = Fixture {
        own: own["id"].as_str().unwrap().to_string(),
        other: other["id"].as_str().unwrap().to_string(),
        own_sub: sub["id"].as_str().unwrap().to_string(),
        own_db: own["database"].as_str().unwrap().to_string(),
    };
    // Something for GETs and PATCHes to find.
    let admin = app.token(Role::TenantAdmin, Some(id(&own)), None);
    crate::kit::call(
        &app,
        Method::POST,
        "/v1/agents",
        &admin,
        None,
        Some(json!({ "name": "seed", "type": "chat" })),
    )
    .await;

    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::new(Config {
        cases: cases as u32,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let snapshots = Snapshots {
        catalog: app.catalog_db().await,
        tenant: app.server.connect(&fixture.own_db).await,
    };
    let last = std::sync::Mutex::new(snapshots.take().await);
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    // The routes are the spec's, plus one that no route serves.
    let mut routes = crate::kit::spec::Spec::fetch(&app).await.routes();
    assert!(routes.len() >= 25, "{} routes in the spec", routes.len());
    routes.push(("/nowhere/at/all".to_string(), Vec::new()));
    let routes = std::sync::Arc::new(routes);
    let result = runner.run(&generated(routes.clone()), |g| {
        let (status, message) = tokio::task::block_in_place(|| {
            handle.block_on(async {
                // Every parameter of the path takes the generated segment.
                let segment = fixture.segment(&g.segment);
                let path = routes[g.route]
                    .0
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') {
                            segment.as_str()
                        } else {
                            s
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                let mut url = app.url(&path);
                if let Some(q) = &g.query {
                    url = format!("{url}?{q}");
                }
                let mut req = client.request(g.method.clone(), url);
                if let Some(token) = fixture.credential(&app, &g.credential) {
                    req = req.header("authorization", format!("Bearer {token}"));
                }
                if let Some(h) = &g.tenant_header {
                    req = req.header("x-tenant-id", fixture.segment(h));
                }
                req = match &g.body {
                    Body::None => req,
                    Body::Json(v) => req.json(v),
                    Body::Bytes(b) => req
                        .header("content-type", "application/json")
                        .body(b.clone()),
                    Body::WrongType(v) => {
                        req.header("content-type", "text/plain").body(v.to_string())
                    }
                };
                let before = last.lock().unwrap().clone();
                let response = match req.send().await {
                    Ok(r) => r,
                    Err(e) if e.is_timeout() => return (0, format!("hung: {g:?}")),
                    Err(e) => return (0, format!("transport error {e}: {g:?}")),
                };
                let status = response.status().as_u16();
                let body = if crate::kit::expect::is_event_stream(&response) {
                    String::new()
                } else {
                    response.text().await.unwrap_or_default()
                };
                if status >= 500 {
                    return (status, format!("{status} for {g:?}: {body}"));
                }
                if status >= 400 {
                    let envelope: Option<Value> = serde_json::from_str(&body).ok();
                    let ok = envelope
                        .as_ref()
                        .and_then(|e| e["error"]["code"].as_str())
                        .is_some();
                    if !ok {
                        return (
                            0,
                            format!("{status} without the envelope for {g:?}: {body}"),
                        );
                    }
                    let after = snapshots.take().await;
                    if before != after {
                        return (
                            0,
                            format!("{status} changed data for {g:?}: {before:?} -> {after:?}"),
                        );
                    }
                }
                if status < 400 {
                    snapshots.settle().await;
                    *last.lock().unwrap() = snapshots.take().await;
                }
                (status, String::new())
            })
        });
        *statuses.lock().unwrap().entry(status).or_default() += 1;
        prop_assert!(status != 0 && status < 500, "{}", message);
        Ok(())
    });
    eprintln!(
        "fuzz: {cases} requests, statuses {:?}",
        statuses.lock().unwrap()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
