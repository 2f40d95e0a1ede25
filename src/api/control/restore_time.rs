//! `/v1/tenants/{id}/recovery-window` and `/v1/tenants/{id}/restore-to-time`:
//! point-in-time restore from the tenant's server's WAL archive. A restore
//! is an operation (202 + Location). super_admin only.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::api::control::backups::RestoreAsNew;
use crate::api::control::operations::operation_accepted;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};
use crate::tenants::RestoreTarget;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreToTime {
    /// The time to restore to (RFC 3339), inside the recovery window.
    #[schema(value_type = String, format = DateTime)]
    at: DateTime<Utc>,
    /// Restore as a new tenant with this slug instead, leaving the tenant
    /// as it is. Without it the tenant itself is restored, and must be
    /// suspended or deleted first.
    as_new: Option<RestoreAsNew>,
}

/// `GET /v1/tenants/{id}/recovery-window`: the earliest and latest times
/// the tenant can be restored to, and the base backups in its archive.
#[utoipa::path(get, path = "/v1/tenants/{id}/recovery-window", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant's recovery window", body = crate::tenants::RecoveryWindow)))]
pub async fn window(
    principal: Principal,
    state: web::Data<AppState>,
    id: crate::api::control::tenants::TenantPath,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let window = state.services().backups.recovery_window(id.0).await?;
    Ok(HttpResponse::Ok().json(window))
}

/// `POST /v1/tenants/{id}/restore-to-time {"at": …, "as_new": {"slug": …}}`:
/// restores the tenant's database as it was at `at`, in place or as a new
/// tenant; an operation.
#[utoipa::path(post, path = "/v1/tenants/{id}/restore-to-time", tag = "backups", request_body = RestoreToTime, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 202, description = "The restore, begun: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}")))))]
pub async fn restore(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: crate::api::control::tenants::TenantPath,
    body: crate::api::http::body::Json<RestoreToTime>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let actor = actor(&principal, &req);
    let body = body.into_inner();
    let target = match body.as_new {
        Some(new) => RestoreTarget::AsNew { slug: new.slug },
        None => RestoreTarget::SameTenant,
    };
    let backups = &state.services().backups;
    let launched = backups
        .restore_to_time(&actor, id.0, body.at, target)
        .await?;
    operation_accepted(&state, launched.op).await
}
