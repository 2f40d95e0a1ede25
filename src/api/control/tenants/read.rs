use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::wire::PageLimit;
use crate::api::AppState;
use crate::api::{ApiError, ErrorCode};
use crate::auth::{Action, Principal, Resource, Role};
use crate::catalog::TenantFilter;
use crate::domain::{TenantId, TenantStatus};
use crate::tenants::TenantView;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<TenantStatus>,
    parent_id: Option<TenantId>,
    /// Tenants whose slug or name contains this (any case), or whose id it is.
    #[param(max_length = 100)]
    q: Option<String>,
    limit: Option<PageLimit>,
    cursor: Option<TenantId>,
}

/// A tenant_admin (not held to a subtenant, its permissions not narrowed)
/// reads its own tenant and that tenant's subtenants; nothing else.
/// super_admin reads every tenant.
pub fn own_tenant(principal: &Principal) -> Option<TenantId> {
    let whole_tenant_admin = principal.role() == Role::TenantAdmin
        && principal.subtenant_id().is_none()
        && !principal.is_narrowed();
    whole_tenant_admin.then(|| principal.tenant_id()).flatten()
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
        "the token does not allow this request",
    )
}

/// The tenant, if `principal` may read it (see `own_tenant`). To anyone
/// else, a tenant that does not exist is as forbidden as another's.
pub async fn readable(
    principal: &Principal,
    state: &AppState,
    id: TenantId,
) -> Result<TenantView, ApiError> {
    if principal.require(Resource::Tenants, Action::Read).is_ok() {
        return Ok(state.tenants().show(id).await?);
    }
    let own = own_tenant(principal).ok_or_else(forbidden)?;
    let view = state.tenants().show(id).await.map_err(|_| forbidden())?;
    if view.id == own || view.parent_id == Some(own) {
        Ok(view)
    } else {
        Err(forbidden())
    }
}

/// `GET /v1/tenants?status=&parent_id=&q=&limit=&cursor=`
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListQuery), responses((status = 200, description = "A page of tenants. A tenant_admin may list only its own tenant's subtenants (`parent_id`).", body = crate::tenants::TenantList), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if principal.require(Resource::Tenants, Action::Read).is_err() {
        // A tenant_admin: its own subtenants only.
        let own = own_tenant(&principal);
        if own.is_none() || query.parent_id != own {
            principal.require(Resource::Tenants, Action::Read)?;
        }
    }
    let search = query
        .q
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    if search.as_ref().is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "q: at most 100 characters",
        ));
    }
    let page = state
        .tenants()
        .list(TenantFilter {
            status: query.status,
            parent_id: query.parent_id,
            after: query.cursor,
            search,
            limit: PageLimit::get(query.limit, 50),
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1/tenants/{id}`: the tenant with its effective configuration.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant with its effective settings. A tenant_admin may read its own tenant and its subtenants.", body = crate::tenants::TenantView), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn show(
    principal: Principal,
    state: web::Data<AppState>,
    id: TenantPath,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(readable(&principal, &state, id.0).await?))
}
