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

pub use http::openapi;
use http::{audited, error, extract, middleware, state};

pub use audited::{audit_denial, request_origin};
pub use control::metrics::spawn_gauges;
pub use data::{TenantContext, SUBTENANT_HEADER, TENANT_HEADER};
pub use error::{envelope_response, ApiError, ErrorBody, ErrorCode, ErrorEnvelope};
pub use extract::{envelope_fallback, extractor_configs};
pub use middleware::{request_telemetry, RequestSpan, RouteLabel};
pub use routes::{document, routes};
pub use state::AppState;
