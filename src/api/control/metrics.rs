//! `GET /metrics`: the Prometheus page. A scrape reads only what is in
//! memory: the fleet gauges (tenants by state, tier and schema version, the
//! running fleet migrations, connections per server) are refreshed from the
//! catalog by a background task every `metrics.refresh_secs`, never per
//! scrape. With `metrics.token` set, the page needs that bearer token.

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::api::http::{ApiError, AppState};
use crate::telemetry::metrics::{
    collect_process, handle, ROUTER_POOLS, RUNS_RUNNING, RUN_ITEMS, SERVER_BUDGET,
    SERVER_CONNECTIONS, TENANTS, TENANTS_BY_VERSION, TENANTS_DRIFTED,
};

/// `GET /metrics`: the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "meta", operation_id = "metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn render(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    may_scrape(&state, &req)?;
    ::metrics::gauge!(ROUTER_POOLS).set(state.tenancy().pools_cached().await as f64);
    collect_process();
    let handle = handle();
    handle.run_upkeep();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render()))
}

/// With `metrics.token` set, the scrape must present it as a bearer token
/// (compared in constant time).
fn may_scrape(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(token) = &state.settings().metrics.token else {
        return Ok(());
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = presented
        .as_bytes()
        .ct_eq(token.expose_secret().as_bytes())
        .into();
    if !ok {
        return Err(crate::auth::AuthError::MissingCredentials.into());
    }
    Ok(())
}

/// Refreshes the fleet gauges from the catalog every `every`, until
/// `shutdown`. A label set that disappears is set to 0, not left stale.
pub fn spawn_gauges(
    state: web::Data<AppState>,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut shown = Shown::default();
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if let Err(e) = refresh(&state, &mut shown).await {
                tracing::debug!(error = %format!("{e:#}"), "could not refresh the fleet gauges; the last values stand");
            }
        }
    })
}

/// The label sets the gauges showed last time.
#[derive(Default)]
struct Shown {
    tenants: BTreeSet<(String, String)>,
    versions: BTreeSet<i32>,
    items: BTreeSet<String>,
}

async fn refresh(state: &AppState, shown: &mut Shown) -> anyhow::Result<()> {
    let counts = state.fleet().counts().await?;
    let mut tenants = BTreeSet::new();
    for (status, tier, n) in counts.tenants {
        ::metrics::gauge!(TENANTS, "state" => status.clone(), "tier" => tier.clone()).set(n as f64);
        tenants.insert((status, tier));
    }
    for (status, tier) in shown.tenants.difference(&tenants) {
        ::metrics::gauge!(TENANTS, "state" => status.clone(), "tier" => tier.clone()).set(0.0);
    }
    shown.tenants = tenants;
    let mut versions = BTreeSet::new();
    for (version, n) in counts.versions {
        ::metrics::gauge!(TENANTS_BY_VERSION, "version" => version.to_string()).set(n as f64);
        versions.insert(version);
    }
    for version in shown.versions.difference(&versions) {
        ::metrics::gauge!(TENANTS_BY_VERSION, "version" => version.to_string()).set(0.0);
    }
    shown.versions = versions;
    let mut items = BTreeSet::new();
    for (item_state, n) in counts.run_items {
        ::metrics::gauge!(RUN_ITEMS, "state" => item_state.clone()).set(n as f64);
        items.insert(item_state);
    }
    for item_state in shown.items.difference(&items) {
        ::metrics::gauge!(RUN_ITEMS, "state" => item_state.clone()).set(0.0);
    }
    shown.items = items;
    ::metrics::gauge!(RUNS_RUNNING).set(counts.runs_running as f64);
    ::metrics::gauge!(TENANTS_DRIFTED).set(counts.drifted as f64);
    for server in state.servers().list().await? {
        if let Some((open, budget)) = state.tenancy().connections_on(&server) {
            ::metrics::gauge!(SERVER_CONNECTIONS, "server" => server.name.clone()).set(open as f64);
            ::metrics::gauge!(SERVER_BUDGET, "server" => server.name.clone()).set(budget as f64);
        }
    }
    Ok(())
}
