//! `POST /v1/tenants/{id}/move`: moving a root tenant's database to another
//! server.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::TenantPath;
use crate::api::control::operations::operation_accepted;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTenant {
    server: Uuid,
}

/// `POST /v1/tenants/{id}/move {"server": …}`: begins moving a root
/// tenant's database to another server; answers 202 with the operation
/// (`Location: /v1/operations/{op}`) once the tenant and the servers are
/// checked under the tenant's lock.
#[utoipa::path(post, path = "/v1/tenants/{id}/move", tag = "tenants", request_body = MoveTenant, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 202, description = "The move, begun: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}")))))]
pub async fn move_tenant(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    body: crate::api::http::body::Json<MoveTenant>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    let actor = actor(&principal, &req);
    let placement = &state.services().placement;
    let launched = placement.move_tenant(&actor, id.0, body.server).await?;
    operation_accepted(&state, launched.op).await
}
