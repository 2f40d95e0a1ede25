//! `POST /v1/tenants/{id}/migrations`: migrating one tenant's database to
//! the newest (or a named) schema version, or showing what would run.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::{ApiError, AppState, AuditedChange};
use crate::auth::{Action, Principal, Resource};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateTenant {
    /// Migrate up to this version (the newest when absent).
    #[serde(default, deserialize_with = "crate::api::wire::opt_i32")]
    #[schema(minimum = 1, maximum = 2147483647)]
    target_version: Option<i32>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/tenants/{id}/migrations`: migrate one tenant now, or with
/// `dry_run` list what would run.
#[utoipa::path(post, path = "/v1/tenants/{id}/migrations", tag = "migrations", request_body = MigrateTenant, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "What ran (or would run, with `dry_run`)"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn migrate_tenant(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: TenantPath,
    body: crate::api::body::Json<MigrateTenant>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let body = body.into_inner();
    // A dry run changes nothing, so it has no record.
    let change = if body.dry_run {
        None
    } else {
        Some(
            AuditedChange::begin(
                &state,
                &principal,
                &req,
                Some(id.0),
                "tenants.migrate",
                &format!("tenants/{}", id.0),
            )
            .await?,
        )
    };
    let outcome = state
        .tenants()
        .migrate(id.0, body.target_version, body.dry_run)
        .await
        .map_err(ApiError::from);
    let report = match change {
        Some(change) => change.end(&state, outcome).await?,
        None => outcome?,
    };
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<crate::api::wire::PageLimit>,
}

/// `GET /v1/tenants/{id}/migrations`: the tenant's items in fleet runs, newest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/migrations", tag = "migrations", params(("id" = uuid::Uuid, Path, description = "Tenant id"), HistoryQuery), responses((status = 200, description = "The tenant's schema version and migration history"), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn history(
    principal: Principal,
    state: web::Data<AppState>,
    id: TenantPath,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    let tenant = state.tenants().show(id.0).await?;
    let limit = crate::api::wire::PageLimit::get(query.limit, 50);
    let history = state.catalog().migration_history(id.0, limit).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "schema_version": tenant.schema_version,
        "latest_version": state.tenants().provisioner().migrations().latest_version(),
        "history": history,
    })))
}
