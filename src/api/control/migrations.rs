//! `/v1/migrations`: fleet migration runs (the template, a canary wave,
//! then every tenant) and the version histogram. super_admin only. One
//! tenant's migration is `tenants::migrate`.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::AppState;
use crate::api::{resource, ApiError, AuditedChange};
use crate::auth::{Action, Principal, Resource};
use crate::domain::Tier;
use crate::fleet::FleetOptions;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/migrations/runs").route(web::post().to(start_run)))
        .service(resource("/v1/migrations/runs/{run}").route(web::get().to(show_run)))
        .service(resource("/v1/migrations/runs/{run}/resume").route(web::post().to(resume_run)))
        .service(resource("/v1/migrations/versions").route(web::get().to(versions)));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// Tenants migrated at once.
    #[serde(
        default = "default_concurrency",
        deserialize_with = "crate::api::wire::usize_field"
    )]
    #[schema(minimum = 1, maximum = 256)]
    concurrency: usize,
    /// Tenants migrated first, alone, before the rest.
    #[serde(
        default = "default_canary",
        deserialize_with = "crate::api::wire::usize_field"
    )]
    #[schema(minimum = 0, maximum = 1000000)]
    canary: usize,
    /// Failures the run goes on past; one more stops it.
    #[serde(default, deserialize_with = "crate::api::wire::usize_field")]
    #[schema(minimum = 0, maximum = 1000000)]
    max_failures: usize,
    tier: Option<Tier>,
    #[serde(default, deserialize_with = "crate::api::wire::opt_i32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    target_version: Option<i32>,
    /// Open every tenant database, even those recorded as current.
    #[serde(default)]
    verify: bool,
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
    wait: bool,
}

/// Runs `run` as its operation: answers 202 with the operation at once,
/// or 200 with the run's summary at its end when `wait` is set.
async fn execute(
    state: &web::Data<AppState>,
    run: Uuid,
    wait: bool,
) -> Result<HttpResponse, ApiError> {
    let fleet = state.fleet().clone();
    let started = fleet.launch(run, Arc::new(|_| {})).await?;
    if wait {
        return match started.run {
            Some(work) => Ok(HttpResponse::Ok().json(work.await?)),
            None => Err(crate::fleet::FleetError::NotResumable("running".into()).into()),
        };
    }
    crate::api::operations::accepted(state, started.op, started.run, move |result| {
        Box::pin(async move {
            if let Err(e) = result {
                tracing::error!(run = %run, error = %e, "fleet migration run failed");
            }
        })
    })
    .await
}

/// `POST /v1/migrations/runs[?wait=true]`: migrate the template, then every
/// tenant (of `tier`), canaries first.
#[utoipa::path(post, path = "/v1/migrations/runs", tag = "migrations", request_body = StartRun, params(WaitQuery), responses((status = 202, description = "The run, started: follow the operation", body = crate::api::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = 200, description = "The run, finished (with `wait=true`)"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn start_run(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<WaitQuery>,
    body: crate::api::body::Json<StartRun>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let body = body.into_inner();
    let options = FleetOptions {
        concurrency: body.concurrency,
        canary: body.canary,
        max_failures: body.max_failures,
        tier: body.tier,
        target: body.target_version,
        verify: body.verify,
    };
    // The record covers starting the run; its progress is the run's own.
    let change = AuditedChange::begin(
        &state,
        &principal,
        &req,
        None,
        "migrations.start",
        "migration_runs",
    )
    .await?;
    let outcome = state.fleet().start(&options).await;
    let run = change
        .end_naming(&state, outcome.map_err(ApiError::from), |r| {
            Some((None, format!("migration_runs/{}", r.id)))
        })
        .await?;
    execute(&state, run.id, query.wait).await
}

/// `GET /v1/migrations/runs/{run}`: progress, counts and failures.
#[utoipa::path(get, path = "/v1/migrations/runs/{run}", tag = "migrations", params(("run" = uuid::Uuid, Path, description = "Run id")), responses((status = 200, description = "The run: progress, counts, failures"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn show_run(
    principal: Principal,
    state: web::Data<AppState>,
    run: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    Ok(HttpResponse::Ok().json(state.fleet().summary(run.into_inner()).await?))
}

/// `POST /v1/migrations/runs/{run}/resume[?wait=true]`: retry failed and pending items only.
#[utoipa::path(post, path = "/v1/migrations/runs/{run}/resume", tag = "migrations", params(("run" = uuid::Uuid, Path, description = "Run id"), WaitQuery), responses((status = 202, description = "The run, resumed: follow the operation", body = crate::api::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = 200, description = "The run, finished (with `wait=true`)"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn resume_run(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    run: web::Path<Uuid>,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let run = run.into_inner();
    let change = AuditedChange::begin(
        &state,
        &principal,
        &req,
        None,
        "migrations.resume",
        &format!("migration_runs/{run}"),
    )
    .await?;
    let outcome = state.fleet().prepare_resume(run, false).await;
    let run = change.end(&state, outcome.map_err(ApiError::from)).await?;
    execute(&state, run.id, query.wait).await
}

/// `GET /v1/migrations/versions`: tenants per schema version, and who is behind.
#[utoipa::path(get, path = "/v1/migrations/versions", tag = "migrations", responses((status = 200, description = "Tenants per schema version"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn versions(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    let latest = state.tenants().provisioner().migrations().latest_version();
    let histogram = state.catalog().version_histogram().await?;
    let behind: Vec<_> = state
        .catalog()
        .tenants_behind(latest, 1000)
        .await?
        .into_iter()
        .map(|(id, slug, version)| serde_json::json!({ "id": id, "slug": slug, "schema_version": version }))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "latest_version": latest,
        "versions": histogram,
        "behind": behind,
    })))
}
