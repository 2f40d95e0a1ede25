//! `/v1/tenants/{id}/backups`: backups kept in the backup location, taken
//! and restored as operations (202 + Location). super_admin only.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::control::operations::operation_accepted;
use crate::api::http::audited::actor;
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};
use crate::domain::{Slug, TenantId};
use crate::tenants::{BackupRecord, RestoreTarget};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackupList {
    /// Newest first.
    pub backups: Vec<BackupRecord>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreAsNew {
    /// The new tenant's slug.
    pub(crate) slug: Slug,
}

/// `POST /v1/tenants/{id}/backups`: takes a backup into the backup
/// location, as an operation.
#[utoipa::path(post, path = "/v1/tenants/{id}/backups", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 202, description = "The backup, begun: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}")))))]
pub async fn take(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: crate::api::control::tenants::TenantPath,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let actor = actor(&principal, &req);
    let launched = state.services().backups.take(&actor, id.0).await?;
    operation_accepted(&state, launched.op).await
}

/// `GET /v1/tenants/{id}/backups`: the kept backups, newest first (a
/// purged tenant's too).
#[utoipa::path(get, path = "/v1/tenants/{id}/backups", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant's kept backups", body = BackupList)))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    id: crate::api::control::tenants::TenantPath,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let backups = state.services().backups.list(id.0).await?;
    Ok(HttpResponse::Ok().json(BackupList { backups }))
}

/// `GET /v1/tenants/{id}/backups/{backup}`
#[utoipa::path(get, path = "/v1/tenants/{id}/backups/{backup}", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("backup" = uuid::Uuid, Path, description = "Backup id")), responses((status = 200, description = "The backup", body = BackupRecord)))]
pub async fn show(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(TenantId, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let (tenant, backup) = path.into_inner();
    Ok(HttpResponse::Ok().json(state.services().backups.show(tenant, backup).await?))
}

async fn begin_restore(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    (tenant, backup): (TenantId, Uuid),
    target: RestoreTarget,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let actor = actor(&principal, &req);
    let backups = &state.services().backups;
    let launched = backups.restore(&actor, tenant, backup, target).await?;
    operation_accepted(&state, launched.op).await
}

/// `POST /v1/tenants/{id}/backups/{backup}/restore`: restores the backup
/// into its tenant, which must be suspended or deleted; an operation.
#[utoipa::path(post, path = "/v1/tenants/{id}/backups/{backup}/restore", tag = "backups", params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("backup" = uuid::Uuid, Path, description = "Backup id")), responses((status = 202, description = "The restore, begun: follow the operation", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}")))))]
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
#[utoipa::path(post, path = "/v1/tenants/{id}/backups/{backup}/restore-as-new", tag = "backups", request_body = RestoreAsNew, params(("id" = uuid::Uuid, Path, description = "Tenant id"), ("backup" = uuid::Uuid, Path, description = "Backup id")), responses((status = 202, description = "The restore, begun: follow the operation; its result is the new tenant", body = crate::api::control::operations::OperationView, headers(("Location" = String, description = "The operation: /v1/operations/{id}")))))]
pub async fn restore_as_new(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(TenantId, Uuid)>,
    body: crate::api::http::body::Json<RestoreAsNew>,
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
