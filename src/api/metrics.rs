//! `GET /metrics`: the Prometheus page. Gauges that mirror state (pools
//! cached, connections per server against their budgets) are set as the page
//! is rendered; everything else was recorded where it happened.

use actix_web::{web, HttpResponse};

use crate::api::AppState;
use crate::telemetry::metrics::{handle, ROUTER_POOLS, SERVER_BUDGET, SERVER_CONNECTIONS};

/// `GET /metrics`: the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "meta", operation_id = "metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = "4XX", description = "Refused; the error envelope names why", body = super::ErrorEnvelope)))]
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
