//! `/v1/tenants/{id}/identity-provider`: a tenant's own OpenID provider.
//! super_admin, or the tenant's own tenant_admin (of its root, for a
//! subtenant). What a provider's tokens may do is `auth::providers`'.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::api::control::tenants::TenantPath;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::providers::spec::{ProviderInput, ProviderView};
use crate::auth::reach::{may_reach, Target};
use crate::auth::{Action, Principal, Resource};
use crate::domain::TenantId;

/// super_admin, or the admin of the tenant's root (`auth::reach`).
async fn may_manage(
    principal: &Principal,
    state: &AppState,
    tenant: TenantId,
    action: Action,
) -> Result<(), ApiError> {
    principal.require(Resource::ApiKeys, action)?;
    let root = state.services().identity.root_of(tenant).await?;
    may_reach(principal, Target::TenantKeys { tenant: root })?;
    Ok(())
}

/// `PUT /v1/tenants/{id}/identity-provider`: sets the tenant's provider.
/// Its addresses are checked before any connection, then its discovery
/// document and keys are read once.
#[utoipa::path(put, path = "/v1/tenants/{id}/identity-provider", tag = "identity", request_body = ProviderInput, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The provider, as stored (its client secret never shown)", body = ProviderView)))]
pub async fn set(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: TenantPath,
    body: crate::api::http::body::Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    may_manage(&principal, &state, tenant.0, Action::Admin).await?;
    let identity = &state.services().identity;
    let view = identity
        .set(&actor(&principal, &req), tenant.0, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /v1/tenants/{id}/identity-provider`: the tenant's own provider, or
/// its root's (`inherited: true`).
#[utoipa::path(get, path = "/v1/tenants/{id}/identity-provider", tag = "identity", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant's provider", body = ProviderView)))]
pub async fn show(
    principal: Principal,
    state: web::Data<AppState>,
    tenant: TenantPath,
) -> Result<HttpResponse, ApiError> {
    may_manage(&principal, &state, tenant.0, Action::Read).await?;
    let view = state.services().identity.show(tenant.0).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /v1/tenants/{id}/identity-provider`: its tokens stop working.
#[utoipa::path(delete, path = "/v1/tenants/{id}/identity-provider", tag = "identity", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 204, description = "Removed; a subtenant uses its root's provider again")))]
pub async fn remove(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: TenantPath,
) -> Result<HttpResponse, ApiError> {
    may_manage(&principal, &state, tenant.0, Action::Admin).await?;
    let identity = &state.services().identity;
    identity.remove(&actor(&principal, &req), tenant.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
