//! Prometheus metrics: the names, one process-wide recorder, and recording.
//! Request metrics come from the HTTP layer's middleware; the router, the
//! provisioner, the migrator and backups record their own. `api::metrics`
//! renders the page.
//!
//! Rule: label values are bounded, so series never grow with the tenant
//! count or with what clients send: a request names its tenant only for the
//! first `metrics.tenant_label_limit` tenants this process sees (`other`
//! past them), and a method the API does not use is labelled `other`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use metrics::{Counter, Histogram, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::{TenantId, Tier};

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
pub const BUILD_INFO: &str = "tenant_plane_build_info";
pub const TENANTS: &str = "tenant_plane_tenants";
pub const TENANTS_BY_VERSION: &str = "tenant_plane_tenants_by_schema_version";
pub const RUN_ITEMS: &str = "tenant_plane_migration_run_items";
pub const RUNS_RUNNING: &str = "tenant_plane_migration_runs_running";
pub const TENANTS_DRIFTED: &str = "tenant_plane_tenants_drifted";
pub const DENIALS: &str = "tenant_plane_denials_total";
pub const GATEWAY_CLIENTS: &str = "tenant_plane_gateway_clients";
pub const GATEWAY_TRANSACTIONS: &str = "tenant_plane_gateway_transactions_total";
pub const GATEWAY_WAIT: &str = "tenant_plane_gateway_session_wait_seconds";

/// Every metric with its help text and unit, for the page's `# HELP` lines.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests, by route, method, status, tier and tenant"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency, by route, method and tier"
    );
    describe_counter!(API_ERRORS, "Error responses, by code and status");
    describe_counter!(
        ROUTER_POOL_HITS,
        "Requests that found their tenant's pool cached"
    );
    describe_counter!(
        ROUTER_POOL_MISSES,
        "Requests that built their tenant's pool"
    );
    describe_counter!(
        ROUTER_POOL_EVICTIONS,
        "Tenant pools closed by the LRU or idle expiry"
    );
    describe_counter!(ROUTER_SESSIONS_OPENED, "Tenant sessions the router opened");
    describe_gauge!(ROUTER_POOLS, "Tenant pools cached now");
    describe_gauge!(
        SERVER_CONNECTIONS,
        "Router connections open to a server, by server"
    );
    describe_gauge!(SERVER_BUDGET, "A server's connection budget, by server");
    describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "Long operations' durations, by operation and outcome"
    );
    describe_gauge!(
        BUILD_INFO,
        "The build: always 1, with the version as a label"
    );
    describe_gauge!(TENANTS, "Tenants (and subtenants), by state and tier");
    describe_gauge!(
        TENANTS_BY_VERSION,
        "Root tenants with a database, by schema version"
    );
    describe_gauge!(RUN_ITEMS, "Items of the running fleet migrations, by state");
    describe_gauge!(RUNS_RUNNING, "Fleet migration runs running now");
    describe_gauge!(
        TENANTS_DRIFTED,
        "Root tenants whose schema drifted from their version, as last checked"
    );
    describe_gauge!(GATEWAY_CLIENTS, "Clients connected to the gateway now");
    describe_counter!(
        GATEWAY_TRANSACTIONS,
        "Transactions the gateway relayed, by tier"
    );
    describe_histogram!(
        GATEWAY_WAIT,
        Unit::Seconds,
        "How long a gateway transaction waited for a tenant session"
    );
    describe_counter!(
        DENIALS,
        "Refused requests (401, 403, 429 for denials), by reason"
    );
}

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
            .expect("valid buckets")
            .set_buckets_for_metric(Matcher::Full(GATEWAY_WAIT.into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(OPERATION_DURATION.into()), &slow))
            .expect("non-empty buckets")
            .install_recorder()
            .inspect(|_| {
                describe();
                metrics_process::Collector::default().describe();
                ::metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            })
            .unwrap_or_else(|_| {
                // Another recorder is installed (an embedding program's):
                // keep ours for rendering only.
                PrometheusBuilder::new().build_recorder().handle()
            })
    })
}

/// The standard `process_*` metrics (CPU, memory, open files, start time),
/// read from the OS as a page is rendered.
pub fn collect_process() {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR
        .get_or_init(metrics_process::Collector::default)
        .collect();
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

/// Whether `id` has a label of its own: the first `limit` tenants served
/// get one, every other tenant counts as `other`.
fn has_own_label(id: TenantId, limit: usize) -> bool {
    static LABELLED: OnceLock<Mutex<HashSet<TenantId>>> = OnceLock::new();
    if limit == 0 {
        return false;
    }
    let mut seen = LABELLED
        .get_or_init(Default::default)
        .lock()
        .expect("tenant labels");
    seen.contains(&id) || (seen.len() < limit && seen.insert(id))
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
        Method::HEAD => SharedString::const_str("HEAD"),
        Method::OPTIONS => SharedString::const_str("OPTIONS"),
        // Clients choose method names: any other is one label, so they
        // cannot grow the series without bound.
        _ => SharedString::const_str("other"),
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
        // Statuses are three digits: at most 500 label values.
        .unwrap_or_else(|| status.as_str().to_string().into())
}

/// The handles one request's metrics go to, looked up in the registry once
/// per worker thread and label set (a registry lookup hashes every label).
#[derive(PartialEq, Eq, Hash)]
struct RequestLabels {
    route: Option<std::sync::Arc<str>>,
    method: actix_web::http::Method,
    status: u16,
    tier: &'static str,
    tenant: TenantLabel,
}

#[derive(PartialEq, Eq, Hash)]
enum TenantLabel {
    /// Not a data-plane request.
    None,
    /// A tenant past the label limit.
    Other,
    Own(TenantId),
}

/// Beyond this many label sets a worker forgets its handles and starts over
/// (label sets are bounded; odd methods from clients are not).
const HANDLE_CACHE_LIMIT: usize = 4096;

thread_local! {
    static REQUEST_HANDLES: RefCell<HashMap<RequestLabels, (Counter, Histogram)>> =
        RefCell::new(HashMap::new());
}

/// Counts one request by route, method, status, tier and (bounded) tenant,
/// and its latency by route, method and tier.
/// `route` is the pattern the request matched (none: no route did).
pub fn record_request(
    route: Option<&std::sync::Arc<str>>,
    method: &actix_web::http::Method,
    status: actix_web::http::StatusCode,
    served: Option<ServedTenant>,
    tenant_label_limit: usize,
    started: Instant,
) {
    let tier = served.map(|s| s.tier.as_str()).unwrap_or("none");
    let labels = RequestLabels {
        route: route.cloned(),
        method: method.clone(),
        status: status.as_u16(),
        tier,
        tenant: match served {
            None => TenantLabel::None,
            Some(s) if has_own_label(s.id, tenant_label_limit) => TenantLabel::Own(s.id),
            Some(_) => TenantLabel::Other,
        },
    };
    REQUEST_HANDLES.with_borrow_mut(|handles| {
        if handles.len() >= HANDLE_CACHE_LIMIT && !handles.contains_key(&labels) {
            handles.clear();
        }
        let (requests, latency) = handles.entry(labels).or_insert_with_key(|labels| {
            let route = route
                .map(|r| SharedString::from_shared(r.clone()))
                .unwrap_or(SharedString::const_str("unmatched"));
            let method = method_label(&labels.method);
            let tenant = match labels.tenant {
                TenantLabel::None => SharedString::const_str("none"),
                TenantLabel::Other => SharedString::const_str("other"),
                TenantLabel::Own(id) => id.to_string().into(),
            };
            (
                ::metrics::counter!(
                    HTTP_REQUESTS,
                    "route" => route.clone(),
                    "method" => method.clone(),
                    "status" => status_label(status),
                    "tier" => tier,
                    "tenant" => tenant
                ),
                ::metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method, "tier" => tier),
            )
        });
        requests.increment(1);
        latency.record(started.elapsed().as_secs_f64());
    });
}
