use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::wire::PageLimit;
use crate::api::ApiError;
use crate::api::AppState;
use crate::auth::{Action, Principal, Resource};
use crate::catalog::TenantFilter;
use crate::domain::{TenantId, TenantStatus};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<TenantStatus>,
    parent_id: Option<TenantId>,
    limit: Option<PageLimit>,
    cursor: Option<TenantId>,
}

/// `GET /v1/tenants?status=&parent_id=&limit=&cursor=`
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListQuery), responses((status = 200, description = "A page of tenants", body = crate::tenants::TenantList), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let query = query.into_inner();
    let page = state
        .tenants()
        .list(TenantFilter {
            status: query.status,
            parent_id: query.parent_id,
            after: query.cursor,
            limit: PageLimit::get(query.limit, 50),
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1/tenants/{id}`: the tenant with its effective configuration.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant with its effective settings", body = crate::tenants::TenantView), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn show(
    principal: Principal,
    state: web::Data<AppState>,
    id: TenantPath,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    Ok(HttpResponse::Ok().json(state.tenants().show(id.0).await?))
}
