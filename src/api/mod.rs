//! The HTTP layer, by layer: `http/` the plumbing every route shares,
//! `control/` the control plane's handlers, `data/` the data plane's,
//! `console/` the operator console, and `routes.rs` the table of routes.
//!
//! Rules:
//! - a handler parses input into domain types, calls one service command
//!   or query, and answers; it never builds SQL and never names the
//!   catalog, the provisioner or the router (`tests/api/architecture/`);
//! - `http/` names no handler module: the plumbing serves every layer and
//!   depends on none of them (the route table passes in what it needs).
//!
//! Handlers parse input into domain types and call library
//! code; they never build SQL. Every route is declared once, by its
//! handler's `#[utoipa::path]` and one line of `routes.rs`, from which the
//! actix routes, the spec and each 405's `Allow` are built.

pub(crate) mod console;
pub(crate) mod control;
mod data;
pub mod http;
mod routes;

pub use control::metrics::spawn_gauges;
pub use data::{TenantContext, SUBTENANT_HEADER, TENANT_HEADER};
pub use http::openapi;
pub use http::{
    audit_denial, envelope_fallback, envelope_response, extractor_configs, request_origin,
    request_telemetry, ApiError, AppState, ErrorBody, ErrorCode, ErrorEnvelope, RequestSpan,
    RouteLabel,
};
pub use routes::{document, routes};
