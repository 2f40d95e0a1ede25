//! `/v1/tenants/{id}/api-keys`: a tenant's API keys. super_admin, or that
//! tenant's tenant_admin. The rules a key keeps (its maker's rights and
//! expiry at most, revoked with its maker) are `tenant_keys`'. The list
//! pages like every list (`limit`, `cursor`, `next_cursor`), in the order
//! the keys were made.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::control::tenants::TenantPath;
use crate::api::http::audited::actor;
use crate::api::http::wire::PageLimit;
use crate::api::http::AppState;
use crate::api::http::{ApiError, ErrorCode};
use crate::auth::reach::{may_reach, Target};
use crate::auth::{Action, Permission, Principal, Resource, Role};
use crate::domain::TenantId;
use crate::tenant_keys::NewKey;

/// super_admin, or the tenant's own admin (`auth::reach`).
fn may_manage_keys(principal: &Principal, tenant: TenantId) -> Result<(), ApiError> {
    principal.require(Resource::ApiKeys, Action::Admin)?;
    may_reach(principal, Target::TenantKeys { tenant })?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: crate::domain::TenantName,
    role: KeyRole,
    /// Narrow the role's permissions; the key can never do more than the
    /// credential that mints it (403 `grant_exceeds_caller`).
    #[serde(default)]
    #[schema(max_items = 32)]
    permissions: Vec<Permission>,
    /// Binds the key to a subtenant of this tenant (required for
    /// `subtenant_admin`).
    subtenant_id: Option<TenantId>,
    /// Seconds until the key stops working; absent, it does not expire.
    /// Either way a key ends when the credential that mints it does: a
    /// later end is capped to it, and the response has `expiry_capped`.
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 60, maximum = 315360000)]
    ttl_secs: Option<u32>,
}

impl CreateKey {
    /// The key to mint; a subtenant_admin key without its subtenant is
    /// refused (the spec states this rule too: `if`/`then` on CreateKey).
    fn into_new(self) -> Result<NewKey, ApiError> {
        let role = Role::from(self.role);
        if role == Role::SubtenantAdmin && self.subtenant_id.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                "subtenant_id: required for subtenant_admin".to_string(),
            ));
        }
        Ok(NewKey {
            name: self.name.as_str().to_string(),
            role,
            permissions: self.permissions,
            subtenant: self.subtenant_id,
            ttl_secs: self.ttl_secs,
        })
    }
}

/// The roles an API key may have: any but super_admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    TenantAdmin,
    SubtenantAdmin,
    Agent,
    Viewer,
}

impl From<KeyRole> for Role {
    fn from(role: KeyRole) -> Self {
        match role {
            KeyRole::TenantAdmin => Role::TenantAdmin,
            KeyRole::SubtenantAdmin => Role::SubtenantAdmin,
            KeyRole::Agent => Role::Agent,
            KeyRole::Viewer => Role::Viewer,
        }
    }
}

/// `POST /v1/tenants/{id}/api-keys`: the key is in this response only.
#[utoipa::path(post, path = "/v1/tenants/{id}/api-keys", tag = "api keys", request_body = CreateKey, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 201, description = "The key, with its secret shown this once")))]
pub async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: TenantPath,
    body: crate::api::http::body::Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant.0;
    may_manage_keys(&principal, tenant)?;
    let new = body.into_inner().into_new()?;
    let keys = &state.services().tenant_keys;
    let minted = keys
        .mint(&actor(&principal, &req), &principal, tenant, new)
        .await?;
    Ok(HttpResponse::Created().json(minted))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<PageLimit>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
}

/// `GET /v1/tenants/{id}/api-keys?limit=&cursor=`: never the keys
/// themselves; oldest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/api-keys", tag = "api keys", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ListQuery), responses((status = 200, description = "A page of the tenant's keys, oldest first, without secrets; `next_cursor` is absent on the last page")))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    tenant: TenantPath,
    query: crate::api::http::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    may_manage_keys(&principal, tenant.0)?;
    let query = query.into_inner();
    let limit = PageLimit::get(query.limit, 50);
    let keys = &state.services().tenant_keys;
    Ok(HttpResponse::Ok().json(keys.list(tenant.0, query.cursor, limit).await?))
}

/// `DELETE /v1/tenants/{id}/api-keys/{key}`: revoked at once, with every
/// key it minted (and theirs).
#[utoipa::path(delete, path = "/v1/tenants/{id}/api-keys/{key}", tag = "api keys", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("key" = uuid::Uuid, Path, description = "Key id")), responses((status = 204, description = "Revoked, with every key it minted, transitively")))]
pub async fn revoke(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(TenantId, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, key) = path.into_inner();
    may_manage_keys(&principal, tenant)?;
    let keys = &state.services().tenant_keys;
    keys.revoke(&actor(&principal, &req), tenant, key).await?;
    Ok(HttpResponse::NoContent().finish())
}
