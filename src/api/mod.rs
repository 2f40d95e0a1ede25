//! HTTP handlers. Handlers parse input into domain types and call library
//! code; they never build SQL.

pub(crate) mod console;
pub(crate) mod control;
mod data;
pub mod http;

// Short paths for the layers' modules, so a handler names
// `crate::api::body` rather than where it lives.
pub(crate) use control::{
    api_keys, backups, domains, events, health, metrics, migrations, operations, overview, servers,
    tenants,
};
pub use http::openapi;
pub(crate) use http::{
    audited, body, denial, error, extract, idempotency, middleware, principal, state, wire,
};

use actix_web::web;

pub use audited::{audit_denial, request_origin, AuditedChange};
pub use data::{TenantContext, SUBTENANT_HEADER, TENANT_HEADER};
pub use error::{envelope_response, ApiError, ErrorBody, ErrorCode, ErrorEnvelope};
pub use extract::{envelope_fallback, extractor_configs};
pub use metrics::spawn_gauges;
pub use middleware::{request_telemetry, RequestSpan, RouteLabel};
pub use state::AppState;

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // The data plane first: actix tries resources in order, and its
    // requests are the hot path.
    cfg.configure(data::routes)
        .service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/metrics").route(web::get().to(metrics::render)))
        .service(resource("/openapi.json").route(web::get().to(openapi::openapi_json)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(
            resource("/v1/servers")
                .route(web::get().to(servers::list))
                .route(web::post().to(servers::register)),
        )
        .service(
            resource("/v1/servers/{id}")
                .route(web::get().to(servers::show))
                .route(web::patch().to(servers::update)),
        )
        .service(resource("/v1/servers/{id}/drain").route(web::post().to(servers::drain)))
        .configure(tenants::routes)
        .configure(migrations::routes)
        .configure(operations::routes)
        .configure(backups::routes)
        .configure(events::routes)
        .configure(api_keys::routes)
        .configure(domains::routes)
        .configure(console::routes)
        .configure(overview::routes)
        .default_service(web::to(extract::not_found));
}

/// A resource whose unmatched methods get 405 in the envelope, rather than
/// falling through to the app's 404. It carries its pattern as the route
/// label for metrics and traces (cheaper than matching the path again).
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path)
        .app_data(RouteLabel::new(path))
        .default_service(web::to(extract::method_not_allowed))
}
