//! `POST /v1/tenants/{id}/migrations/revert`: reverting one tenant's
//! database to an earlier schema version with the down migrations.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertTenant {
    /// Revert down to this version (every applied version above it is undone).
    #[serde(deserialize_with = "crate::api::http::wire::opt_i32")]
    #[schema(value_type = i32, required = true, minimum = 0, maximum = 2147483647)]
    target: Option<i32>,
    /// Run down steps that lose data (a dropped table or column).
    #[serde(default)]
    accept_data_loss: bool,
}

/// `POST /v1/tenants/{id}/migrations/revert`: revert one tenant now.
#[utoipa::path(post, path = "/v1/tenants/{id}/migrations/revert", tag = "migrations", request_body = RevertTenant, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "What was reverted", body = crate::tenants::TenantRevert)))]
pub async fn revert_tenant(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    body: crate::api::http::body::Json<RevertTenant>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let body = body.into_inner();
    let actor = actor(&principal, &req);
    let lifecycle = &state.services().lifecycle;
    let report = lifecycle
        // The spec requires a whole number: a body without one never gets here.
        .revert(
            &actor,
            id.0,
            body.target.unwrap_or(0),
            body.accept_data_loss,
        )
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
