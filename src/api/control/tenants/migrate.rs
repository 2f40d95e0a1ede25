//! `POST /v1/tenants/{id}/migrations`: migrating one tenant's database to
//! the newest (or a named) schema version, or showing what would run.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateTenant {
    /// Migrate up to this version (the newest when absent).
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_i32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    target_version: Option<i32>,
    #[serde(default)]
    dry_run: bool,
    /// Migrate even when the tenant is recorded as drifted (otherwise 409
    /// `tenant_drifted`).
    #[serde(default)]
    allow_drift: bool,
}

/// `POST /v1/tenants/{id}/migrations`: migrate one tenant now, or with
/// `dry_run` list what would run.
#[utoipa::path(post, path = "/v1/tenants/{id}/migrations", tag = "migrations", request_body = MigrateTenant, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "What ran (or would run, with `dry_run`)")))]
pub async fn migrate_tenant(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    body: crate::api::http::body::Json<MigrateTenant>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let body = body.into_inner();
    let actor = actor(&principal, &req);
    let lifecycle = &state.services().lifecycle;
    let report = lifecycle
        .migrate(
            &actor,
            id.0,
            body.target_version,
            body.dry_run,
            body.allow_drift,
        )
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<crate::api::http::wire::PageLimit>,
}

/// `GET /v1/tenants/{id}/migrations`: the tenant's items in fleet runs, newest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/migrations", tag = "migrations", params(("id" = uuid::Uuid, Path, description = "Tenant id"), HistoryQuery), responses((status = 200, description = "The tenant's schema version and migration history")))]
pub async fn history(
    principal: Principal,
    state: web::Data<AppState>,
    id: TenantPath,
    query: crate::api::http::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    let limit = crate::api::http::wire::PageLimit::get(query.limit, 50);
    let lifecycle = &state.services().lifecycle;
    Ok(HttpResponse::Ok().json(lifecycle.migration_history(id.0, limit).await?))
}
