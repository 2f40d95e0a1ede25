use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::control::operations::operation_accepted;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};
use crate::tenants::Transition;

async fn apply(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    transition: Transition,
) -> Result<HttpResponse, ApiError> {
    let action = match transition {
        Transition::Delete | Transition::Purge => Action::Delete,
        _ => Action::Write,
    };
    principal.require(Resource::Tenants, action)?;
    let actor = actor(&principal, &req);
    let lifecycle = &state.services().lifecycle;
    if transition == Transition::Purge {
        // Long (a final backup, then the drop): answered with its operation.
        let launched = lifecycle.purge(&actor, id.0).await?;
        return operation_accepted(&state, launched.op).await;
    }
    let view = lifecycle.change_state(&actor, id.0, transition).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /v1/tenants/{id}/suspend`
#[utoipa::path(post, path = "/v1/tenants/{id}/suspend", tag = "tenants", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant, suspended", body = crate::tenants::TenantView)))]
pub async fn suspend(
    p: Principal,
    s: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
) -> Result<HttpResponse, ApiError> {
    apply(p, s, req, id, Transition::Suspend).await
}

/// `POST /v1/tenants/{id}/resume`
#[utoipa::path(post, path = "/v1/tenants/{id}/resume", tag = "tenants", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant, active", body = crate::tenants::TenantView)))]
pub async fn resume(
    p: Principal,
    s: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
) -> Result<HttpResponse, ApiError> {
    apply(p, s, req, id, Transition::Resume).await
}

/// `POST /v1/tenants/{id}/restore`: undo a soft delete.
#[utoipa::path(post, path = "/v1/tenants/{id}/restore", tag = "tenants", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant, undeleted", body = crate::tenants::TenantView)))]
pub async fn restore(
    p: Principal,
    s: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
) -> Result<HttpResponse, ApiError> {
    apply(p, s, req, id, Transition::Restore).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    purge: bool,
}

/// `DELETE /v1/tenants/{id}[?purge=true]`: soft delete (kept for the retention
/// period), or purge (database and role dropped; only a deleted tenant),
/// which answers 202 with its operation. Subtenants go too.
#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = uuid::Uuid, Path, description = "Tenant id"), DeleteQuery), responses((status = 200, description = "The tenant, deleted", body = crate::tenants::TenantView), (status = 202, description = "The purge, begun (`purge=true`): follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}")))))]
pub async fn delete(
    p: Principal,
    s: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    query: crate::api::http::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let transition = if query.purge {
        Transition::Purge
    } else {
        Transition::Delete
    };
    apply(p, s, req, id, transition).await
}
