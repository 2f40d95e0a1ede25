//! `POST /v1/tenants/{id}/move`: moving a root tenant's database to another
//! server.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::TenantPath;
use crate::api::operations::accepted;
use crate::api::{ApiError, AppState, AuditedChange};
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
#[utoipa::path(post, path = "/v1/tenants/{id}/move", tag = "tenants", request_body = MoveTenant, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 202, description = "The move, begun: follow the operation", body = crate::api::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
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
    let outcome = state.tenants().start_move(id.0, body.server).await;
    let started = change.end(&state, outcome.map_err(ApiError::from)).await?;
    let router = state.router().clone();
    let tenant = id.0;
    accepted(&state, started.op, started.run, move |result| {
        Box::pin(async move {
            if let Err(e) = result {
                tracing::warn!(tenant.id = %tenant, error = %e, "move failed");
            }
            // This replica forgets at once; the others hear it from the catalog.
            router.invalidate(tenant).await;
            router.close_pool(tenant).await;
        })
    })
    .await
}
