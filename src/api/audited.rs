//! Control-plane audit from the HTTP layer: successful control-plane
//! mutations, and every 401 or 403 that no handler recorded itself.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpMessage, HttpRequest};

use super::{envelope_fallback, ApiError};
use crate::audit::{self, NewEvent};
use crate::auth::Principal;
use crate::data::audit::Origin;
use crate::domain::TenantId;
use crate::state::AppState;

/// Request marker: this denial is already in the audit log.
#[derive(Clone, Copy)]
pub struct DenialAudited;

/// Where a request came from: client address and user agent (truncated).
pub fn request_origin(req: &HttpRequest) -> Origin {
    Origin {
        ip_address: req
            .connection_info()
            .realip_remote_addr()
            .map(str::to_string),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    }
}

/// Records a successful control-plane mutation; if the record cannot be
/// written, the request fails (the mutation itself has happened: the error
/// says so in the log).
pub async fn record_success(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    tenant: Option<TenantId>,
    action: &str,
    resource: &str,
) -> Result<(), ApiError> {
    let origin = request_origin(req);
    audit::record(
        state.catalog(),
        &NewEvent {
            tenant_id: tenant,
            subtenant_id: None,
            user_id: principal.user_id(),
            action,
            resource,
            ip_address: origin.ip_address.as_deref(),
            user_agent: origin.user_agent.as_deref(),
            success: true,
        },
    )
    .await
    .map_err(|e| {
        tracing::error!(
            action,
            resource,
            "a control-plane change succeeded but its audit record failed"
        );
        ApiError::from(e)
    })
}

/// Error handler for 401 and 403: a denial that no handler audited is
/// recorded here, with the caller when one was authenticated; then the
/// response gets the envelope like any other error.
pub fn audit_denial<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if res.request().extensions().get::<DenialAudited>().is_some() {
        return envelope_fallback(res);
    }
    Ok(ErrorHandlerResponse::Future(Box::pin(async move {
        record_denial(res.request(), res.status()).await;
        match envelope_fallback(res)? {
            ErrorHandlerResponse::Response(res) => Ok(res),
            ErrorHandlerResponse::Future(later) => later.await,
        }
    })))
}

async fn record_denial(request: &HttpRequest, status: StatusCode) {
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return;
    };
    let principal = request.extensions().get::<Principal>().cloned();
    let origin = request_origin(request);
    let user = principal
        .as_ref()
        .map(|p| p.user_id().to_string())
        .unwrap_or_else(|| "anonymous".into());
    let result = audit::record(
        state.catalog(),
        &NewEvent {
            tenant_id: principal.as_ref().and_then(Principal::tenant_id),
            subtenant_id: principal.as_ref().and_then(Principal::subtenant_id),
            user_id: &user,
            action: if status == StatusCode::UNAUTHORIZED {
                "unauthenticated"
            } else {
                "forbidden"
            },
            resource: &format!("{} {}", request.method(), request.path()),
            ip_address: origin.ip_address.as_deref(),
            user_agent: origin.user_agent.as_deref(),
            success: false,
        },
    )
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not audit a denied request");
    }
}
