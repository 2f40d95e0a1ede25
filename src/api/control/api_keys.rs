//! `/v1/tenants/{id}/api-keys`: a tenant's API keys. super_admin, or that
//! tenant's tenant_admin.
//!
//! Rules:
//! - A key never outlives the credential that mints it: a key minted by a
//!   token (or a key) that expires gets at most that expiry. A longer
//!   `ttl_secs`, or none, is capped to it, and the response says so
//!   (`expiry_capped`), rather than refused: a client that asks for no
//!   expiry still gets a working key, and sees when it ends.
//! - A key minted with a key records its maker; revoking a key revokes all
//!   it minted, transitively (`catalog::api_keys`).
//! - The list pages like every list (`limit`, `cursor`, `next_cursor`), in
//!   the order the keys were made.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::tenants::TenantPath;
use crate::api::wire::PageLimit;
use crate::api::AppState;
use crate::api::{resource, ApiError, AuditedChange, ErrorCode};
use crate::auth::{api_key, Action, AuthError, Permission, Principal, Resource, Role};
use crate::catalog::{ListedKey, Minted};
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
            ErrorCode::Forbidden,
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
    /// Seconds until the key stops working; absent, it does not expire.
    /// Either way a key ends when the credential that mints it does: a
    /// later end is capped to it, and the response has `expiry_capped`.
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
            ErrorCode::InvalidField,
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
            ErrorCode::NotARootTenant,
            "API keys belong to a root tenant; bind one to a subtenant with subtenant_id",
        ));
    }
    if let Some(sub) = body.subtenant_id {
        let sub = state.tenants().show(sub).await?;
        if sub.parent_id != Some(tenant) {
            return Err(ApiError::not_found(
                ErrorCode::SubtenantNotFound,
                "no such subtenant of this tenant",
            ));
        }
    }
    let asked = body
        .ttl_secs
        .map(|secs| Utc::now() + chrono::Duration::seconds(i64::from(secs)));
    let (expires_at, capped) = capped_expiry(asked, principal.expires_at());
    // A key minted with a key is revoked with it.
    let minted_by = principal
        .user_id()
        .strip_prefix("apikey:")
        .and_then(|id| id.parse::<Uuid>().ok());
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
    let inserted = match state
        .catalog()
        .insert_api_key(
            &issued.record,
            minted_by,
            state.settings().tenants.max_api_keys,
        )
        .await
    {
        Ok(Minted::Stored) => Ok(()),
        // Revoked (or expired) since it was checked: as if it never was.
        Ok(Minted::MakerGone) => {
            Err(AuthError::InvalidCredential("the API key was revoked").into())
        }
        Err(e) => Err(ApiError::from(e)),
    };
    change.end(&state, inserted).await?;
    let mut view = serde_json::to_value(&issued.record).expect("record serialises");
    view["key"] = serde_json::Value::String(issued.key);
    view["minted_by"] = serde_json::json!(minted_by);
    view["expiry_capped"] = serde_json::Value::Bool(capped);
    Ok(HttpResponse::Created().json(view))
}

/// The expiry a key gets: the one asked for (`None`: none), capped to its
/// maker's (`maker_exp`, seconds since the epoch; `i64::MAX`: none).
/// Returns it and whether it was capped.
fn capped_expiry(asked: Option<DateTime<Utc>>, maker_exp: i64) -> (Option<DateTime<Utc>>, bool) {
    let Some(limit) = (maker_exp != i64::MAX)
        .then(|| DateTime::from_timestamp(maker_exp, 0))
        .flatten()
    else {
        return (asked, false);
    };
    match asked {
        Some(at) if at <= limit => (Some(at), false),
        _ => (Some(limit), true),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<PageLimit>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
}

#[derive(Debug, Serialize)]
struct KeyList {
    api_keys: Vec<ListedKey>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<Uuid>,
}

/// `GET /v1/tenants/{id}/api-keys?limit=&cursor=`: never the keys
/// themselves; oldest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/api-keys", tag = "api keys", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ListQuery), responses((status = 200, description = "A page of the tenant's keys, oldest first, without secrets; `next_cursor` is absent on the last page"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    tenant: TenantPath,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    may_manage_keys(&principal, tenant.0)?;
    let query = query.into_inner();
    let limit = PageLimit::get(query.limit, 50);
    let mut keys = state
        .catalog()
        .list_api_keys(tenant.0, query.cursor, limit + 1)
        .await?;
    let more = keys.len() as i64 > limit;
    keys.truncate(limit as usize);
    let next_cursor = more.then(|| keys.last().map(|k| k.record.id)).flatten();
    Ok(HttpResponse::Ok().json(KeyList {
        api_keys: keys,
        next_cursor,
    }))
}

/// `DELETE /v1/tenants/{id}/api-keys/{key}`: revoked at once, with every
/// key it minted (and theirs).
#[utoipa::path(delete, path = "/v1/tenants/{id}/api-keys/{key}", tag = "api keys", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("key" = uuid::Uuid, Path, description = "Key id")), responses((status = 204, description = "Revoked, with every key it minted, transitively"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
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
        Ok(revoked) if !revoked.is_empty() => {
            // At once here; other replicas hear the catalog's notice.
            state.services().api_keys.forget_tenant(tenant);
            Ok(())
        }
        Ok(_) => Err(ApiError::not_found(
            ErrorCode::ApiKeyNotFound,
            "no such live API key",
        )),
        Err(e) => Err(e.into()),
    };
    change.end(&state, revoked).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::capped_expiry;

    #[test]
    fn a_key_asking_for_no_end_or_a_later_end_than_its_maker_gets_the_makers_end_and_says_so() {
        let now = Utc::now();
        let maker = (now + Duration::hours(1)).timestamp();
        let makers_end = chrono::DateTime::from_timestamp(maker, 0);
        assert_eq!(capped_expiry(None, maker), (makers_end, true));
        assert_eq!(
            capped_expiry(Some(now + Duration::days(3650)), maker),
            (makers_end, true)
        );
        let sooner = now + Duration::minutes(5);
        assert_eq!(capped_expiry(Some(sooner), maker), (Some(sooner), false));
        // A maker that never expires leaves the request as it is.
        assert_eq!(capped_expiry(None, i64::MAX), (None, false));
        assert_eq!(capped_expiry(Some(sooner), i64::MAX), (Some(sooner), false));
    }
}
