//! Logging, request ids and metrics. Every request runs in a span that
//! carries its request id, and every response echoes it as `x-request-id`.

pub mod metrics;
mod request;

use actix_web::http::header::HeaderName;
use tracing_subscriber::EnvFilter;

pub use request::{request_telemetry, RequestSpan, RouteLabel};

use crate::config::LogFormat;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber: `RUST_LOG` filters (else `default_filter`),
/// lines go to stderr as text or JSON. A second call is a no-op.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
