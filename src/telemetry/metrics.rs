//! Prometheus metrics: one process-wide recorder, rendered at `/metrics`.
//! Request metrics come from a middleware; the router, the provisioner, the
//! migrator and backups record their own. Gauges that mirror state (pools
//! cached, connections per server) are set when the page is rendered.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use metrics::SharedString;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::{TenantId, Tier};
use crate::state::AppState;

pub const HTTP_REQUESTS: &str = "tenant_plane_http_requests_total";
pub const HTTP_DURATION: &str = "tenant_plane_http_request_duration_seconds";
pub const API_ERRORS: &str = "tenant_plane_api_errors_total";
pub const ROUTER_POOL_HITS: &str = "tenant_plane_router_pool_hits_total";
pub const ROUTER_POOL_MISSES: &str = "tenant_plane_router_pool_misses_total";
pub const ROUTER_POOL_EVICTIONS: &str = "tenant_plane_router_pool_evictions_total";
/// Tenant sessions the router opened (a request that found none idle).
pub const ROUTER_SESSIONS_OPENED: &str = "tenant_plane_router_sessions_opened_total";
pub const ROUTER_POOLS: &str = "tenant_plane_router_pools_cached";
pub const SERVER_CONNECTIONS: &str = "tenant_plane_server_connections_open";
pub const SERVER_BUDGET: &str = "tenant_plane_server_connection_budget";
pub const OPERATION_DURATION: &str = "tenant_plane_operation_duration_seconds";

/// The process-wide recorder (installed once, however many apps a test starts).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let latency = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let slow = [
            0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ];
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(OPERATION_DURATION.into()), &slow))
            .expect("non-empty buckets")
            .install_recorder()
            .unwrap_or_else(|_| {
                // Another recorder is installed (an embedding program's):
                // keep ours for rendering only.
                PrometheusBuilder::new().build_recorder().handle()
            })
    })
}

/// Folds recorded histogram samples into their buckets every few seconds;
/// without it they pile up in memory between scrapes.
pub fn spawn_upkeep(shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => handle().run_upkeep(),
            }
        }
    })
}

/// Records how long an operation (`tenant_create`, `tenant_migrate`,
/// `backup`, `restore`, `move`) took, and whether it succeeded.
pub fn record_operation(operation: &'static str, started: Instant, ok: bool) {
    ::metrics::histogram!(
        OPERATION_DURATION,
        "operation" => operation,
        "outcome" => if ok { "ok" } else { "error" }
    )
    .record(started.elapsed().as_secs_f64());
}

/// Request marker: the tenant (and its tier) a data-plane request served.
#[derive(Clone, Copy)]
pub struct ServedTenant {
    pub id: TenantId,
    pub tier: Tier,
}

/// The tenants given a label of their own so far (bounded by the setting).
fn tenant_label(id: TenantId, limit: usize) -> SharedString {
    static LABELLED: OnceLock<Mutex<HashSet<TenantId>>> = OnceLock::new();
    if limit == 0 {
        return SharedString::const_str("other");
    }
    let mut seen = LABELLED
        .get_or_init(Default::default)
        .lock()
        .expect("tenant labels");
    if seen.contains(&id) || (seen.len() < limit && seen.insert(id)) {
        id.to_string().into()
    } else {
        SharedString::const_str("other")
    }
}

/// Labels without an allocation for the methods and statuses the API uses.
fn method_label(method: &actix_web::http::Method) -> SharedString {
    use actix_web::http::Method;
    match *method {
        Method::GET => SharedString::const_str("GET"),
        Method::POST => SharedString::const_str("POST"),
        Method::PATCH => SharedString::const_str("PATCH"),
        Method::PUT => SharedString::const_str("PUT"),
        Method::DELETE => SharedString::const_str("DELETE"),
        _ => method.as_str().to_string().into(),
    }
}

fn status_label(status: actix_web::http::StatusCode) -> SharedString {
    const COMMON: [&str; 12] = [
        "200", "201", "202", "204", "400", "401", "403", "404", "409", "422", "429", "503",
    ];
    COMMON
        .iter()
        .find(|c| c.as_bytes() == status.as_str().as_bytes())
        .map(|c| SharedString::const_str(c))
        .unwrap_or_else(|| status.as_str().to_string().into())
}

/// Middleware: requests by route, method, status and tier, and latency.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings().metrics.tenant_label_limit)
        .unwrap_or(0);
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let served = res.request().extensions().get::<ServedTenant>().copied();
    let tier = served.map(|s| s.tier.as_str()).unwrap_or("none");
    let tenant = served
        .map(|s| tenant_label(s.id, limit))
        .unwrap_or(SharedString::const_str("none"));
    let status = status_label(res.status());
    let method = method_label(res.request().method());
    ::metrics::counter!(
        HTTP_REQUESTS,
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => status,
        "tier" => tier,
        "tenant" => tenant
    )
    .increment(1);
    ::metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method, "tier" => tier)
        .record(started.elapsed().as_secs_f64());
    Ok(res)
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    let router = state.router();
    ::metrics::gauge!(ROUTER_POOLS).set(router.pools_cached().await as f64);
    if let Ok(servers) = state.catalog().list_servers().await {
        for server in servers {
            if let Some((open, budget)) = router.connections_on(&server) {
                ::metrics::gauge!(SERVER_CONNECTIONS, "server" => server.name.clone())
                    .set(open as f64);
                ::metrics::gauge!(SERVER_BUDGET, "server" => server.name.clone())
                    .set(budget as f64);
            }
        }
    }
    let handle = handle();
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}
