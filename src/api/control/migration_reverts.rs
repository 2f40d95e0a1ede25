//! `POST /v1/migrations/runs/{run}/revert`: taking back the tenants a fleet
//! run moved forward, with the down migrations, as an operation.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::control::migrations::WaitQuery;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};
use crate::fleet::RevertOptions;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertRun {
    /// Run down steps that lose data (a dropped table or column).
    #[serde(default)]
    accept_data_loss: bool,
    /// Tenants reverted at once (4 when absent).
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 1, maximum = 256)]
    concurrency: Option<u32>,
}

/// `POST /v1/migrations/runs/{run}/revert[?wait=true]`: revert exactly the
/// tenants the run moved forward that are still at its target; the rest
/// are listed with the reason.
#[utoipa::path(post, path = "/v1/migrations/runs/{run}/revert", tag = "migrations", request_body = RevertRun, params(("run" = uuid::Uuid, Path, description = "Run id"), WaitQuery), responses((status = 202, description = "The revert, started: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = 200, description = "The revert, finished (with `wait=true`)", body = crate::fleet::RevertSummary)))]
pub async fn revert_run(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    run: web::Path<Uuid>,
    query: crate::api::http::Query<WaitQuery>,
    body: crate::api::http::body::Json<RevertRun>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let body = body.into_inner();
    let options = RevertOptions {
        accept_data_loss: body.accept_data_loss,
        concurrency: body
            .concurrency
            .map_or(RevertOptions::default().concurrency, |c| c as usize),
    };
    let actor = actor(&principal, &req);
    let launched = state
        .fleet()
        .revert_run(&actor, run.into_inner(), &options, Arc::new(|_| {}))
        .await?;
    if query.wait {
        return Ok(HttpResponse::Ok().json(launched.wait().await?));
    }
    crate::api::control::operations::operation_accepted(&state, launched.op).await
}

/// `GET /v1/migrations/reverts/{revert}`: a revert's counts and items (the
/// tenants reverted, and the rest with their reason).
#[utoipa::path(get, path = "/v1/migrations/reverts/{revert}", tag = "migrations", params(("revert" = uuid::Uuid, Path, description = "Revert id")), responses((status = 200, description = "The revert: counts and items", body = crate::fleet::RevertSummary)))]
pub async fn show_revert(
    principal: Principal,
    state: web::Data<AppState>,
    revert: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    let summary = state.fleet().revert_summary(revert.into_inner()).await?;
    Ok(HttpResponse::Ok().json(summary))
}
