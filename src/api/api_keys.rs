//! `/v1/tenants/{id}/api-keys`: a tenant's API keys. super_admin, or that
//! tenant's tenant_admin.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::tenants::TenantPath;
use super::{resource, ApiError, AuditedChange};
use crate::api::AppState;
use crate::auth::{api_key, Action, Permission, Principal, Resource, Role};
use crate::domain::TenantId;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/v1/tenants/{id}/api-keys")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(resource("/v1/tenants/{id}/api-keys/{key}").route(web::delete().to(revoke)));
}

/// super_admin, or the tenant's own admin.
fn may_manage_keys(principal: &Principal, tenant: TenantId) -> Result<(), ApiError> {
    principal.require(Resource::ApiKeys, Action::Admin)?;
    if principal.role() == Role::SuperAdmin
        || (principal.tenant_id() == Some(tenant) && principal.subtenant_id().is_none())
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the token does not allow this request",
        ))
    }
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
    /// Seconds until the key stops working; it never does when absent.
    #[serde(default, deserialize_with = "crate::api::wire::opt_u32")]
    #[schema(minimum = 60, maximum = 315360000)]
    ttl_secs: Option<u32>,
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
#[utoipa::path(post, path = "/v1/tenants/{id}/api-keys", tag = "api keys", request_body = CreateKey, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 201, description = "The key, with its secret shown this once"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: TenantPath,
    body: crate::api::body::Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant.0;
    may_manage_keys(&principal, tenant)?;
    let body = body.into_inner();
    let invalid = |m: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            m.to_string(),
        )
    };
    let role = Role::from(body.role);
    if role == Role::SubtenantAdmin && body.subtenant_id.is_none() {
        // The spec states this rule too (`if`/`then` on CreateKey).
        return Err(invalid("subtenant_id: required for subtenant_admin"));
    }
    // No key can do more than the principal that mints it.
    principal.may_grant(role, &body.permissions, body.subtenant_id)?;
    let root = state.tenants().show(tenant).await?;
    if root.parent_id.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_a_root_tenant",
            "API keys belong to a root tenant; bind one to a subtenant with subtenant_id",
        ));
    }
    if let Some(sub) = body.subtenant_id {
        let sub = state.tenants().show(sub).await?;
        if sub.parent_id != Some(tenant) {
            return Err(ApiError::not_found(
                "subtenant_not_found",
                "no such subtenant of this tenant",
            ));
        }
    }
    let expires_at = body
        .ttl_secs
        .map(|secs| chrono::Utc::now() + chrono::Duration::seconds(i64::from(secs)));
    let issued = api_key::issue(
        tenant,
        body.subtenant_id,
        body.name.as_str().to_string(),
        role,
        body.permissions,
        principal.user_id(),
        expires_at,
    );
    let change = AuditedChange::begin(
        &state,
        &principal,
        &req,
        Some(tenant),
        "api_keys.create",
        &format!("api_keys/{}", issued.record.id),
    )
    .await?;
    let inserted = state
        .catalog()
        .insert_api_key(&issued.record, state.settings().tenants.max_api_keys)
        .await;
    change.end(&state, inserted.map_err(ApiError::from)).await?;
    let mut view = serde_json::to_value(&issued.record).expect("record serialises");
    view["key"] = serde_json::Value::String(issued.key);
    Ok(HttpResponse::Created().json(view))
}

/// `GET /v1/tenants/{id}/api-keys`: never the keys themselves.
#[utoipa::path(get, path = "/v1/tenants/{id}/api-keys", tag = "api keys", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant's keys, without secrets"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    tenant: TenantPath,
) -> Result<HttpResponse, ApiError> {
    may_manage_keys(&principal, tenant.0)?;
    let keys = state.catalog().list_api_keys(tenant.0).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "api_keys": keys })))
}

/// `DELETE /v1/tenants/{id}/api-keys/{key}`: revoked at once.
#[utoipa::path(delete, path = "/v1/tenants/{id}/api-keys/{key}", tag = "api keys", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("key" = uuid::Uuid, Path, description = "Key id")), responses((status = 204, description = "Revoked"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn revoke(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(TenantId, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, key) = path.into_inner();
    may_manage_keys(&principal, tenant)?;
    let change = AuditedChange::begin(
        &state,
        &principal,
        &req,
        Some(tenant),
        "api_keys.revoke",
        &format!("api_keys/{key}"),
    )
    .await?;
    let revoked = match state.catalog().revoke_api_key(tenant, key).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found(
            "api_key_not_found",
            "no such live API key",
        )),
        Err(e) => Err(e.into()),
    };
    change.end(&state, revoked).await?;
    Ok(HttpResponse::NoContent().finish())
}
