//! HTTP plumbing shared by every resource: request bodies and wire types,
//! extractors, middleware, the denial throttle, idempotency, the principal,
//! the error envelope, the application state and the published spec.

pub(crate) mod audited;
pub(crate) mod body;
pub(crate) mod denial;
pub(crate) mod error;
pub(crate) mod event_stream;
pub(crate) mod extract;
pub(crate) mod idempotency;
pub(crate) mod middleware;
pub mod openapi;
pub(crate) mod principal;
pub(crate) mod query;
pub(crate) mod session;
pub(crate) mod state;
pub(crate) mod wire;

// The names every handler uses, from the plumbing that defines them.
pub use audited::{audit_denial, request_origin};
pub use error::{envelope_response, ApiError, ErrorBody, ErrorCode, ErrorEnvelope};
pub use extract::{envelope_fallback, extractor_configs};
pub use middleware::{request_telemetry, RequestSpan, RouteLabel};
pub use query::Query;
pub use state::AppState;
