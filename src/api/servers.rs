//! `/v1/servers`: the database servers tenants are placed on.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::ApiError;
use crate::auth::{Action, Principal, Resource};
use crate::catalog::{ServerPatch, ServerState};
use crate::state::AppState;

/// `GET /v1/servers`: every server with its tenant count.
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Read)?;
    let servers = state.catalog().list_servers().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "servers": servers })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateServer {
    state: Option<ServerState>,
    capacity: Option<u32>,
    connection_budget: Option<u32>,
}

/// `PATCH /v1/servers/{id}`: mark a server draining or down, or change its
/// capacity and connection budget.
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<UpdateServer>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    let body = body.into_inner();
    let positive = |field: &'static str, v: Option<u32>| match v {
        Some(0) => Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field} must be at least 1"),
        )),
        Some(v) => i32::try_from(v).map(Some).map_err(|_| {
            ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("{field} is too large"),
            )
        }),
        None => Ok(None),
    };
    let patch = ServerPatch {
        state: body.state,
        capacity: positive("capacity", body.capacity)?,
        connection_budget: positive("connection_budget", body.connection_budget)?,
    };
    match state
        .catalog()
        .update_server(id.into_inner(), &patch)
        .await?
    {
        Some(server) => Ok(HttpResponse::Ok().json(server)),
        None => Err(ApiError::not_found(
            "server_not_found",
            "no such database server",
        )),
    }
}
