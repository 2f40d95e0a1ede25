//! `TenantContext`: the extractor every data-plane handler takes. It
//! authenticates, decides which tenant the request is for, refuses a
//! principal that names another tenant (the reach rule, `auth::reach`; the
//! attempt is counted for the audit), checks the tenant's status and rate
//! limit, and hands over its route.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::api::http::AppState;
use crate::api::http::{ApiError, ErrorCode};
use crate::auth::reach::{may_reach, Reach, Target};
use crate::auth::{Action, AuthError, Principal, Resource};
use crate::data::tenant_audit::{self, Origin};
use crate::data::{Caller, Transaction};
use crate::domain::TenantId;
use crate::tenancy::Route;

pub const TENANT_HEADER: &str = "x-tenant-id";
pub const SUBTENANT_HEADER: &str = "x-subtenant-id";

pub struct TenantContext {
    pub principal: Principal,
    pub route: Arc<Route>,
    state: web::Data<AppState>,
    req: HttpRequest,
}

impl FromRequest for TenantContext {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { resolve(&req).await })
    }
}

fn header_tenant(req: &HttpRequest, name: &str) -> Result<Option<TenantId>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<TenantId>().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(ErrorCode::InvalidTenantId, format!("{name} must be a UUID"))
            }),
    }
}

async fn resolve(req: &HttpRequest) -> Result<TenantContext, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered by startup")
        .clone();
    let principal = crate::api::http::principal::authenticate(req)
        .await
        .map_err(|e| crate::api::http::denial::refusal(req, &state, e))?;
    actix_web::HttpMessage::extensions_mut(req).insert(principal.clone());
    let named = header_tenant(req, TENANT_HEADER)?;
    let by_host = match req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(host) => state.tenancy().tenant_for_domain(host).await?,
        None => None,
    };
    let named = named.or(by_host);
    let refused = |e: AuthError| {
        crate::api::http::denial::count(req, &state, "cross_tenant", Some(&principal));
        ApiError::from(e)
    };
    let tenant = match may_reach(&principal, Target::DataRequest { named }).map_err(refused)? {
        Reach::Own(own) => own,
        Reach::Fleet => named.ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::TenantRequired,
                "name the tenant with the X-Tenant-Id header",
            )
        })?,
    };
    // A subtenant user is held to its subtenant; a tenant-wide one may narrow to one.
    let subtenant = match principal.subtenant_id() {
        Some(sub) => Some(sub),
        None => header_tenant(req, SUBTENANT_HEADER)?,
    };
    let route = state.tenancy().route(subtenant.unwrap_or(tenant)).await?;
    let root = route.root.id;
    may_reach(&principal, Target::DataRoute { tenant, root }).map_err(refused)?;
    if let Err(wait) = state.tenancy().check_rate(route.root.id, route.root.tier) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "this tenant is over its request rate; slow down",
        )
        .with_retry_after(wait.as_secs().max(1)));
    }
    if !req.method().is_safe() {
        if let Some(breach) = route.quota_breach() {
            return Err(quota_exceeded(breach));
        }
    }
    tracing::Span::current().record("tenant.id", tracing::field::display(route.root.id));
    actix_web::HttpMessage::extensions_mut(req).insert(crate::telemetry::metrics::ServedTenant {
        id: route.root.id,
        tier: route.root.tier,
    });
    Ok(TenantContext {
        principal,
        route,
        state,
        req: req.clone(),
    })
}

/// A write of a tenant over a quota: 429, saying which quota and when it
/// resets (`Retry-After` too, when it does).
fn quota_exceeded(breach: &crate::directory::QuotaBreach) -> ApiError {
    let quota = breach.quota.as_str();
    let when = match breach.resets_at {
        Some(at) => format!(
            "it resets at {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "writes resume once its use drops under it".into(),
    };
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::QuotaExceeded,
        format!(
            "this tenant is over its {quota} quota ({} of {}); {when}",
            breach.used, breach.limit
        ),
    )
    .with_details(crate::api::http::error::ErrorDetails {
        quota: Some(crate::api::http::error::QuotaDetail {
            quota: quota.to_string(),
            limit: breach.limit,
            used: breach.used,
            resets_at: breach.resets_at,
        }),
        ..Default::default()
    });
    if let Some(at) = breach.resets_at {
        let secs = (at - chrono::Utc::now()).num_seconds().max(1);
        error = error.with_retry_after(secs as u64);
    }
    error
}

impl TenantContext {
    /// The permission check, stated by each handler; a refusal is audited.
    pub async fn require(&self, resource: Resource, action: Action) -> Result<Caller, ApiError> {
        match self.principal.require(resource, action) {
            Ok(granted) => Ok(Caller {
                tenant_id: self.route.root.id,
                subtenant_id: self.route.subtenant(),
                user_id: self.principal.user_id().to_string(),
                own_only: granted == crate::auth::Scope::Own,
            }),
            Err(e) => {
                crate::api::http::denial::count(
                    &self.req,
                    &self.state,
                    "forbidden",
                    Some(&self.principal),
                );
                Err(e.into())
            }
        }
    }

    /// Where the request came from, for an audit record (worked out only
    /// when one is written).
    pub fn origin(&self) -> Origin {
        crate::api::http::request_origin(&self.req)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Records the caller's `action` on `resource` in the tenant's audit log
    /// inside `tx`, then commits: a change and its record land together.
    pub async fn commit_audited(
        &self,
        tx: Transaction<'_>,
        caller: &Caller,
        action: &str,
        resource: &str,
    ) -> Result<(), ApiError> {
        tenant_audit::record(&tx, caller, &self.origin(), action, resource, true).await?;
        tx.commit().await?;
        Ok(())
    }
}
