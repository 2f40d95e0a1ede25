//! `POST /v1/tenants/{id}/move`: moving a root tenant's database to another
//! server.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::TenantPath;
use crate::api::{ApiError, AppState, AuditedChange};
use crate::auth::{Action, Principal, Resource};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTenant {
    server: Uuid,
}

/// `POST /v1/tenants/{id}/move {"server": …}`: moves a root tenant's
/// database to another server and answers when it is done.
#[utoipa::path(post, path = "/v1/tenants/{id}/move", tag = "tenants", request_body = MoveTenant, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant, on its new server", body = crate::tenants::TenantView), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn move_tenant(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    body: crate::api::body::Json<MoveTenant>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    let change = AuditedChange::begin(
        &state,
        &principal,
        &req,
        Some(id.0),
        "tenants.move",
        &format!("tenants/{}", id.0),
    )
    .await?;
    let outcome = state.tenants().move_tenant(id.0, body.server).await;
    let view = change.end(&state, outcome.map_err(ApiError::from)).await?;
    state.router().invalidate(id.0).await;
    state.router().close_pool(id.0).await;
    Ok(HttpResponse::Ok().json(view))
}
