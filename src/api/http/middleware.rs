//! Per-request telemetry: the root span, the `x-request-id` header and the
//! request metrics. Nothing here runs a regex over the path again or
//! formats a field that no subscriber will read.
//!
//! Rule: every response carries `x-request-id`, and the request's span
//! carries the same id.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use tracing::field::Empty;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::api::http::AppState;
use crate::telemetry::metrics::{record_request, ServedTenant};
use crate::telemetry::REQUEST_ID_HEADER;

/// Resource data: the route pattern a request matched, as metrics and
/// traces label it. Set on each resource when `api::routes` builds them.
#[derive(Clone)]
pub struct RouteLabel(Arc<str>);

impl RouteLabel {
    pub fn new(pattern: &str) -> Self {
        Self(Arc::from(pattern))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The label of the resource that served `req` (none: no route matched).
    pub fn of(req: &HttpRequest) -> Option<&Self> {
        req.app_data::<Self>()
    }
}

/// The root span of each request, with `tenant.id` for the data plane to
/// fill in. Fields that cost work (client address, user agent) are only
/// computed when a subscriber takes the span; the route is recorded at the
/// end, from the resource that served the request.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = Empty,
            http.target = %request.path(),
            http.client_ip = Empty,
            http.user_agent = Empty,
            http.status_code = Empty,
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = request_id.map(tracing::field::display),
            tenant.id = Empty,
            exception.message = Empty,
            exception.details = Empty,
        );
        if !span.is_disabled() {
            // The same rule as the audit and the denial throttle: a
            // forwarded address counts only from a trusted proxy, so a
            // client cannot write any address it likes into the log.
            let trusted = request
                .app_data::<web::Data<AppState>>()
                .map(|s| s.trusted_proxies())
                .unwrap_or(&[]);
            if let Some(ip) = crate::api::http::denial::client_address(request.request(), trusted) {
                span.record("http.client_ip", tracing::field::display(ip));
            }
            if let Some(agent) = request
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
            {
                span.record("http.user_agent", agent);
            }
        }
        span
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        if !span.is_disabled() {
            if let Some(route) = outcome
                .as_ref()
                .ok()
                .and_then(|res| RouteLabel::of(res.request()))
            {
                span.record("http.route", route.as_str());
            }
        }
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Middleware: echoes the request id as `x-request-id`, and records the
/// request's metrics (route, method, status, tier, tenant, latency).
pub async fn request_telemetry(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = req.extensions().get::<RequestId>().copied();
    let mut res = next.call(req).await?;
    let request = res.request();
    let limit = request
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings().metrics.tenant_label_limit)
        .unwrap_or(0);
    let served = request.extensions().get::<ServedTenant>().copied();
    if let Some(state) = request.app_data::<web::Data<AppState>>() {
        if let Some((tenant, plane)) = metered(request, served, res.status()) {
            state.usage().count(tenant, plane);
        }
    }
    record_request(
        RouteLabel::of(request).map(|r| &r.0),
        request.method(),
        res.status(),
        served,
        limit,
        started,
    );
    if let Some(id) = id {
        let mut buf = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buf);
        if let Ok(value) = HeaderValue::from_str(text) {
            res.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
    }
    Ok(res)
}

/// The tenant a request is counted for, and its plane: the tenant a data
/// request was served for, or the one a control request's path names
/// (`/v1/tenants/{id}…`) when it reached it (not 401, 403 or 404).
fn metered(
    request: &actix_web::HttpRequest,
    served: Option<ServedTenant>,
    status: actix_web::http::StatusCode,
) -> Option<(crate::domain::TenantId, crate::usage::Plane)> {
    if let Some(served) = served {
        return Some((served.id, crate::usage::Plane::Data));
    }
    if matches!(status.as_u16(), 401 | 403 | 404) {
        return None;
    }
    let pattern = request.match_pattern()?;
    if !pattern.starts_with("/v1/tenants/{id}") {
        return None;
    }
    let id = request.match_info().get("id")?.parse().ok()?;
    Some((id, crate::usage::Plane::Control))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    use super::*;

    /// Every value the request span records as `http.client_ip`.
    #[derive(Clone, Default)]
    struct ClientIps(Arc<Mutex<Vec<String>>>);

    impl Visit for ClientIps {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "http.client_ip" {
                self.0.lock().unwrap().push(format!("{value:?}"));
            }
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for ClientIps {
        fn on_record(
            &self,
            _: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            _: Context<'_, S>,
        ) {
            values.record(&mut self.clone());
        }
    }

    #[test]
    fn the_request_log_records_an_untrusted_peers_own_address_not_the_x_forwarded_for_it_sent() {
        let ips = ClientIps::default();
        let request = actix_web::test::TestRequest::default()
            .peer_addr("10.1.2.3:4567".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6"))
            .to_srv_request();
        let subscriber = tracing_subscriber::registry().with(ips.clone());
        tracing::subscriber::with_default(subscriber, || {
            let _span = RequestSpan::on_request_start(&request);
        });
        assert_eq!(*ips.0.lock().unwrap(), ["10.1.2.3"]);
    }
}
