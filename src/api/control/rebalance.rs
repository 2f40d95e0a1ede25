//! `/v1/servers/rebalance`: the plan that brings every server under a
//! target utilisation with the fewest bytes moved, and running it as one
//! operation (operators only).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState, ErrorCode};
use crate::auth::{Action, Principal, Resource};

/// The default target utilisation.
const TARGET: f64 = 0.8;

fn target_of(target: Option<f64>) -> Result<f64, ApiError> {
    match target {
        None => Ok(TARGET),
        // The spec's bounds: 0.01 to 1.
        Some(t) if (0.01..=1.0).contains(&t) => Ok(t),
        Some(_) => Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            "target must be from 0.01 to 1",
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// The utilisation every server should end under, from 0.01 to 1
    /// (default 0.8).
    #[param(minimum = 0.01, maximum = 1.0)]
    target: Option<f64>,
}

/// `GET /v1/servers/rebalance?target=0.8`: the moves that would bring every
/// server under the target, from the last usage sample, and where they
/// leave each server. Nothing moves.
#[utoipa::path(get, path = "/v1/servers/rebalance", tag = "servers", params(PlanQuery), responses((status = 200, description = "The plan", body = crate::tenants::RebalancePlan)))]
pub async fn plan(
    principal: Principal,
    state: web::Data<AppState>,
    query: crate::api::http::Query<PlanQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Read)?;
    let target = target_of(query.into_inner().target)?;
    let plan = state.services().placement.rebalance_plan(target).await?;
    Ok(HttpResponse::Ok().json(plan))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rebalance {
    /// As for the plan (default 0.8).
    #[schema(minimum = 0.01, maximum = 1.0)]
    target: Option<f64>,
    /// Moves at once, 1 to 8 (default 2).
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_u32")]
    #[schema(minimum = 1, maximum = 8)]
    parallel: Option<u32>,
}

/// `POST /v1/servers/rebalance {"target", "parallel"}`: plans, then runs the
/// plan's moves as one operation, a bounded number at once; 202 with the
/// operation (the one already running, if a rebalance is).
#[utoipa::path(post, path = "/v1/servers/rebalance", tag = "servers", request_body = Rebalance, responses((status = 202, description = "Rebalancing: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}")))))]
pub async fn apply(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: crate::api::http::body::Json<Rebalance>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Servers, Action::Write)?;
    let body = body.into_inner();
    let target = target_of(body.target)?;
    let parallel = match body.parallel {
        None => 2,
        Some(p @ 1..=8) => p as usize,
        Some(_) => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                "parallel must be 1 to 8",
            ))
        }
    };
    let no_progress = std::sync::Arc::new(|_, _| {});
    let launched = state
        .services()
        .placement
        .rebalance(&actor(&principal, &req), target, parallel, no_progress)
        .await?;
    crate::api::control::operations::operation_accepted(&state, launched.op).await
}
