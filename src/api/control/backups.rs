//! `/v1/tenants/{id}/backups`: backups kept in the backup location, taken
//! and restored as operations (202 + Location). super_admin only.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::operations::accepted;
use crate::api::{resource, ApiError, AppState, AuditedChange};
use crate::auth::{Action, Principal, Resource};
use crate::catalog::{BackupReason, BackupRecord};
use crate::domain::{Slug, TenantId};
use crate::tenants::RestoreTarget;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/v1/tenants/{id}/backups")
            .route(web::post().to(take))
            .route(web::get().to(list)),
    )
    .service(resource("/v1/tenants/{id}/backups/{backup}").route(web::get().to(show)))
    .service(resource("/v1/tenants/{id}/backups/{backup}/restore").route(web::post().to(restore)))
    .service(
        resource("/v1/tenants/{id}/backups/{backup}/restore-as-new")
            .route(web::post().to(restore_as_new)),
    );
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackupList {
    /// Newest first.
    pub backups: Vec<BackupRecord>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreAsNew {
    /// The new tenant's slug.
    slug: Slug,
}

/// `POST /v1/tenants/{id}/backups`: takes a backup into the backup
/// location, as an operation.
#[utoipa::path(post, path = "/v1/tenants/{id}/backups", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 202, description = "The backup, begun: follow the operation", body = crate::api::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn take(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: crate::api::tenants::TenantPath,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let change = AuditedChange::begin(
        &state,
        &principal,
        &req,
        Some(id.0),
        "tenants.backup",
        &format!("tenants/{}/backups", id.0),
    )
    .await?;
    let outcome = state
        .tenants()
        .start_backup(id.0, BackupReason::Manual)
        .await;
    let started = change.end(&state, outcome.map_err(ApiError::from)).await?;
    accepted(&state, started.op, started.run, |_| Box::pin(async {})).await
}

/// `GET /v1/tenants/{id}/backups`: the kept backups, newest first (a
/// purged tenant's too).
#[utoipa::path(get, path = "/v1/tenants/{id}/backups", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant's kept backups", body = BackupList), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    id: crate::api::tenants::TenantPath,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    // A purged tenant's backups (its final one) are still listed: they are
    // what restore-as-new brings it back from.
    if state.catalog().get_tenant(id.0).await?.is_none() {
        return Err(crate::tenants::TenantsError::NotFound.into());
    }
    let backups = state.catalog().list_backups(id.0).await?;
    Ok(HttpResponse::Ok().json(BackupList { backups }))
}

/// `GET /v1/tenants/{id}/backups/{backup}`
#[utoipa::path(get, path = "/v1/tenants/{id}/backups/{backup}", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("backup" = uuid::Uuid, Path, description = "Backup id")), responses((status = 200, description = "The backup", body = BackupRecord), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn show(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(TenantId, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let (tenant, backup) = path.into_inner();
    Ok(HttpResponse::Ok().json(state.tenants().backup_of(tenant, backup).await?))
}

async fn begin_restore(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    (tenant, backup): (TenantId, Uuid),
    target: RestoreTarget,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let change = AuditedChange::begin(
        &state,
        &principal,
        &req,
        Some(tenant),
        "tenants.restore_backup",
        &format!("tenants/{tenant}/backups/{backup}"),
    )
    .await?;
    let outcome = state.tenants().start_restore(tenant, backup, target).await;
    let started = change.end(&state, outcome.map_err(ApiError::from)).await?;
    let router = state.router().clone();
    accepted(&state, started.op, started.run, move |result| {
        Box::pin(async move {
            // The restored database is new: pools to the old one must go.
            if let Ok(report) = result {
                router.invalidate(report.tenant.id).await;
                router.close_pool(report.tenant.id).await;
            }
            router.invalidate(tenant).await;
            router.close_pool(tenant).await;
        })
    })
    .await
}

/// `POST /v1/tenants/{id}/backups/{backup}/restore`: restores the backup
/// into its tenant, which must be suspended or deleted; an operation.
#[utoipa::path(post, path = "/v1/tenants/{id}/backups/{backup}/restore", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("backup" = uuid::Uuid, Path, description = "Backup id")), responses((status = 202, description = "The restore, begun: follow the operation", body = crate::api::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn restore(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(TenantId, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    begin_restore(
        principal,
        state,
        req,
        path.into_inner(),
        RestoreTarget::SameTenant,
    )
    .await
}

/// `POST /v1/tenants/{id}/backups/{backup}/restore-as-new {"slug": …}`:
/// restores the backup as a new tenant with new ids; an operation whose
/// result is the new tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/backups/{backup}/restore-as-new", tag = "backups", request_body = RestoreAsNew, params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("backup" = uuid::Uuid, Path, description = "Backup id")), responses((status = 202, description = "The restore, begun: follow the operation; its result is the new tenant", body = crate::api::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}"))), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn restore_as_new(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(TenantId, Uuid)>,
    body: crate::api::body::Json<RestoreAsNew>,
) -> Result<HttpResponse, ApiError> {
    let slug = body.into_inner().slug;
    begin_restore(
        principal,
        state,
        req,
        path.into_inner(),
        RestoreTarget::AsNew { slug },
    )
    .await
}
