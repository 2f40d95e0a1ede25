//! Control-plane audit from the HTTP layer: where a request came from (for
//! the `Actor` of the command it calls, which writes the change's record),
//! and every 401 or 403 that no handler recorded itself.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest};

use crate::api::http::envelope_fallback;
use crate::api::http::AppState;
use crate::auth::Principal;
use crate::control_audit::Actor;
use crate::data::tenant_audit::Origin;

/// Where a request came from: client address (see `denial::client_address`:
/// a forwarded address counts only from a trusted proxy) and user agent
/// (truncated).
pub fn request_origin(req: &HttpRequest) -> Origin {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.trusted_proxies().to_vec())
        .unwrap_or_default();
    Origin {
        ip_address: crate::api::http::denial::client_address(req, &trusted).map(|a| a.to_string()),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    }
}

/// Error handler for 401 and 403: a refusal is counted against its
/// client's minute and for the audit (in aggregate, see `denial`), with the
/// caller when one was authenticated; then the response gets the envelope
/// like any other error.
pub fn audit_denial<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        let reason = if res.status() == StatusCode::UNAUTHORIZED {
            "unauthenticated"
        } else {
            "forbidden"
        };
        crate::api::http::denial::count(res.request(), state, reason, None);
    }
    envelope_fallback(res)
}

/// The caller of a command, for its audit record: the verified principal,
/// and where the request came from (`request_origin`).
pub fn actor(principal: &Principal, req: &HttpRequest) -> Actor {
    let origin = request_origin(req);
    Actor {
        user_id: principal.user_id().to_string(),
        ip_address: origin.ip_address,
        user_agent: origin.user_agent,
    }
}
