//! Control-plane audit from the HTTP layer: every control-plane change, and
//! every 401 or 403 that no handler recorded itself.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest};

use crate::api::AppState;
use crate::api::{envelope_fallback, ApiError};
use crate::auth::Principal;
use crate::control_audit::{self, NewEvent};
use crate::data::tenant_audit::Origin;
use crate::domain::TenantId;

/// Where a request came from: client address (see `denial::client_address`:
/// a forwarded address counts only from a trusted proxy) and user agent
/// (truncated).
pub fn request_origin(req: &HttpRequest) -> Origin {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.trusted_proxies().to_vec())
        .unwrap_or_default();
    Origin {
        ip_address: crate::api::denial::client_address(req, &trusted).map(|a| a.to_string()),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    }
}

/// A control-plane change under its audit record. The record is written
/// before the change runs, so no change goes unaudited: if the record cannot
/// be written, the request fails and nothing changes.
pub struct AuditedChange {
    pending: control_audit::PendingEvent,
}

impl AuditedChange {
    /// Writes the record (result `pending`); run the change only on `Ok`.
    pub async fn begin(
        state: &AppState,
        principal: &Principal,
        req: &HttpRequest,
        tenant: Option<TenantId>,
        action: &str,
        resource: &str,
    ) -> Result<Self, ApiError> {
        let origin = request_origin(req);
        let pending = control_audit::begin(
            state.catalog(),
            &NewEvent {
                tenant_id: tenant,
                subtenant_id: None,
                user_id: principal.user_id(),
                action,
                resource,
                ip_address: origin.ip_address.as_deref(),
                user_agent: origin.user_agent.as_deref(),
                result: control_audit::AuditResult::Pending,
            },
        )
        .await
        .map_err(|e| {
            tracing::error!(action, resource, error = %e, "refused a change whose audit record could not be written");
            ApiError::from(e)
        })?;
        Ok(Self { pending })
    }

    /// Sets the record's result from the change's, and returns the change's.
    pub async fn end<T>(
        self,
        state: &AppState,
        outcome: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.end_naming(state, outcome, |_| None).await
    }

    /// Like `end`; `subject` names the tenant and resource that a successful
    /// change made, when they were unknown as it began.
    pub async fn end_naming<T>(
        self,
        state: &AppState,
        outcome: Result<T, ApiError>,
        subject: impl FnOnce(&T) -> Option<(Option<TenantId>, String)>,
    ) -> Result<T, ApiError> {
        let named = outcome.as_ref().ok().and_then(subject);
        let named = named.as_ref().map(|(t, r)| (*t, r.as_str()));
        // The change has happened (or failed) either way: a record left
        // `pending` still shows who attempted what, so the answer stands.
        if let Err(e) =
            control_audit::end(state.catalog(), self.pending, outcome.is_ok(), named).await
        {
            tracing::error!(error = %e, "could not set an audit record's result; it stays pending");
        }
        outcome
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
        crate::api::denial::count(res.request(), state, reason, None);
    }
    envelope_fallback(res)
}
