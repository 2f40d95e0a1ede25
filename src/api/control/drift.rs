//! Drift (`/v1/migrations/drift`, `/v1/tenants/{id}/drift`): fleet scans
//! that record each root tenant's schema as in sync, drifted or unknown,
//! the drifted tenants with their per-object diffs, and one tenant's record.
//! super_admin (the Migrations permission), like the other migration routes.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};

use serde::Deserialize;

use super::tenants::TenantPath;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScanQuery {
    /// Answer when the scan has finished, instead of at once.
    #[serde(default)]
    wait: bool,
}

/// `POST /v1/migrations/drift/scans[?wait=true]`: check every root tenant
/// against the expected schema of its version (at most 2 sessions per server).
#[utoipa::path(post, path = "/v1/migrations/drift/scans", tag = "migrations", params(ScanQuery), responses((status = 202, description = "The scan, started (or the one running): follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = 200, description = "The scan, finished (with `wait=true`)", body = crate::drift::ScanSummary)))]
pub async fn start_scan(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: crate::api::http::Query<ScanQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Write)?;
    let actor = actor(&principal, &req);
    let launched = state.drift().start(&actor, Arc::new(|_| {})).await?;
    if query.wait {
        let scan = launched.wait().await?;
        return Ok(HttpResponse::Ok().json(state.drift().summary(scan).await?));
    }
    crate::api::control::operations::operation_accepted(&state, launched.op).await
}

/// `GET /v1/migrations/drift`: the drifted tenants with their diffs, the
/// fleet's counts by state, and the last scan.
#[utoipa::path(get, path = "/v1/migrations/drift", tag = "migrations", responses((status = 200, description = "Drifted tenants, counts by state, the last scan", body = crate::drift::DriftReport)))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    Ok(HttpResponse::Ok().json(state.drift().report().await?))
}

/// `GET /v1/tenants/{id}/drift`: the tenant's drift as last checked
/// (`unknown` when never checked, or checked at an older version).
#[utoipa::path(get, path = "/v1/tenants/{id}/drift", tag = "migrations", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant's drift state and diff", body = crate::drift::TenantDrift)))]
pub async fn tenant(
    principal: Principal,
    state: web::Data<AppState>,
    id: TenantPath,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    super::tenants::read::readable(&principal, &state, id.0).await?;
    Ok(HttpResponse::Ok().json(state.drift().tenant(id.0).await?))
}
