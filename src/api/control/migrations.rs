//! `/v1/migrations`: fleet migration runs (the template, a canary wave,
//! then every tenant) and the version histogram. super_admin only. One
//! tenant's migration is `tenants::migrate`.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::http::audited::actor;
use crate::api::http::ApiError;
use crate::api::http::AppState;
use crate::auth::{Action, Principal, Resource};
use crate::domain::Tier;
use crate::fleet::{FleetOptions, LaunchedRun};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// Tenants migrated at once.
    #[serde(
        default = "default_concurrency",
        deserialize_with = "crate::api::http::wire::usize_field"
    )]
    #[schema(minimum = 1, maximum = 256)]
    concurrency: usize,
    /// Tenants migrated first, alone, before the rest.
    #[serde(
        default = "default_canary",
        deserialize_with = "crate::api::http::wire::usize_field"
    )]
    #[schema(minimum = 0, maximum = 1000000)]
    canary: usize,
    /// Failures the run goes on past; one more stops it.
    #[serde(default, deserialize_with = "crate::api::http::wire::usize_field")]
    #[schema(minimum = 0, maximum = 1000000)]
    max_failures: usize,
    tier: Option<Tier>,
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_i32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    target_version: Option<i32>,
    /// Open every tenant database, even those recorded as current.
    #[serde(default)]
    verify: bool,
    /// Lint rules (e.g. `require-concurrent-index-creation`) whose Error
    /// findings on the pending migrations the run starts despite; without
    /// them such a run is refused with 422 `lint_failed`.
    #[serde(default)]
    acknowledge: Vec<crate::lint::RuleName>,
    /// Migrate tenants recorded as drifted too; otherwise their items end
    /// `skipped`, with the reason.
    #[serde(default)]
    allow_drift: bool,
}

fn default_concurrency() -> usize {
    4
}

fn default_canary() -> usize {
    1
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Answer when the run has finished, instead of at once.
    #[serde(default)]
    pub(crate) wait: bool,
}

/// A run begun: 202 with its operation at once, or 200 with the run's
/// summary at its end when `wait` is set.
async fn answer(
    state: &AppState,
    launched: LaunchedRun,
    wait: bool,
) -> Result<HttpResponse, ApiError> {
    if wait {
        return Ok(HttpResponse::Ok().json(launched.wait().await?));
    }
    crate::api::control::operations::operation_accepted(state, launched.op).await
}

impl StartRun {
    fn into_options(self) -> FleetOptions {
        FleetOptions {
            concurrency: self.concurrency,
            canary: self.canary,
            max_failures: self.max_failures,
            tier: self.tier,
            target: self.target_version,
            verify: self.verify,
            acknowledge: self
                .acknowledge
                .into_iter()
                .map(crate::lint::RuleName::into_string)
                .collect(),
            allow_drift: self.allow_drift,
        }
    }
}

/// `POST /v1/migrations/runs[?wait=true]`: migrate the template, then every
/// tenant (of `tier`), canaries first.
#[utoipa::path(post, path = "/v1/migrations/runs", tag = "migrations", request_body = StartRun, params(WaitQuery), responses((status = 202, description = "The run, started: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = 200, description = "The run, finished (with `wait=true`)")))]
pub async fn start_run(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: crate::api::http::Query<WaitQuery>,
    body: crate::api::http::body::Json<StartRun>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let options = body.into_inner().into_options();
    let actor = actor(&principal, &req);
    let launched = state
        .fleet()
        .start_run(&actor, &options, Arc::new(|_| {}))
        .await?;
    answer(&state, launched, query.wait).await
}

/// `GET /v1/migrations/runs/{run}`: progress, counts and failures.
#[utoipa::path(get, path = "/v1/migrations/runs/{run}", tag = "migrations", params(("run" = uuid::Uuid, Path, description = "Run id")), responses((status = 200, description = "The run: progress, counts, failures")))]
pub async fn show_run(
    principal: Principal,
    state: web::Data<AppState>,
    run: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    Ok(HttpResponse::Ok().json(state.fleet().summary(run.into_inner()).await?))
}

/// `POST /v1/migrations/runs/{run}/resume[?wait=true]`: retry failed and pending items only.
#[utoipa::path(post, path = "/v1/migrations/runs/{run}/resume", tag = "migrations", params(("run" = uuid::Uuid, Path, description = "Run id"), WaitQuery), responses((status = 202, description = "The run, resumed: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = 200, description = "The run, finished (with `wait=true`)")))]
pub async fn resume_run(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    run: web::Path<Uuid>,
    query: crate::api::http::Query<WaitQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let actor = actor(&principal, &req);
    let fleet = state.fleet();
    let launched = fleet
        .resume(&actor, run.into_inner(), false, Arc::new(|_| {}))
        .await?;
    answer(&state, launched, query.wait).await
}

/// `GET /v1/migrations/versions`: tenants per schema version, and who is
/// behind; `Accept: image/svg+xml` draws the tenants per version as bars.
#[utoipa::path(get, path = "/v1/migrations/versions", tag = "migrations", responses((status = 200, description = "Tenants per schema version (`Accept: image/svg+xml`: as bars, one per version)", content((crate::fleet::Versions = "application/json"), (String = "image/svg+xml")))))]
pub async fn versions(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    let versions = state.fleet().versions().await?;
    if super::usage::accepts(&req, "image/svg+xml") {
        let bars: Vec<(String, i64)> = versions
            .versions
            .iter()
            .map(|v| (format!("v{}", v.version), v.tenants))
            .collect();
        return Ok(HttpResponse::Ok()
            .content_type("image/svg+xml")
            .body(super::usage_chart::bar_chart(&bars, "tenants")));
    }
    Ok(HttpResponse::Ok().json(versions))
}
