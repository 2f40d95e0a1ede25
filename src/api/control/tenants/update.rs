use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};
use crate::domain::{TenantName, Tier};
use crate::tenants::TenantPatch;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    name: Option<TenantName>,
    tier: Option<Tier>,
    /// A JSON merge patch (RFC 7396) over the tenant's own settings: the
    /// result must be valid settings.
    #[schema(value_type = Option<crate::tenant_config::TenantConfig>)]
    settings: Option<serde_json::Value>,
}

/// `PATCH /v1/tenants/{id}`: name, tier or settings. A subtenant's limits can
/// only narrow its parent's.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", request_body = UpdateTenant, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant", body = crate::tenants::TenantView)))]
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    body: crate::api::http::body::Json<UpdateTenant>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let body = body.into_inner();
    let patch = TenantPatch {
        name: body.name,
        tier: body.tier,
        settings: body.settings,
    };
    let actor = actor(&principal, &req);
    let view = state
        .services()
        .lifecycle
        .update(&actor, id.0, patch)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
