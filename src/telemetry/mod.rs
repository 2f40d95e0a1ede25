//! Logging and metrics: the subscriber, metric names and recording. It is
//! used by every module and uses nothing of ours above `config` and
//! `domain`; the HTTP side of telemetry (request spans, `x-request-id`, the
//! `/metrics` page) lives in `api`.

pub mod metrics;

use actix_web::http::header::HeaderName;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber: `RUST_LOG` filters (else `default_filter`),
/// lines go to stderr as text or JSON. A second call is a no-op.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Refinery warns of every file in a migrations folder it does not apply,
    // our `V<n>__name.down.sql` files among them; the migrator names the
    // files it refuses itself.
    let filter = filter.add_directive(
        "refinery_core::util=error"
            .parse()
            .expect("a valid directive"),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
