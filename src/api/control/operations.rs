//! `/v1/operations`: every long action as a resource an automation follows.
//! Long actions answer `202 Accepted` with `Location: /v1/operations/{id}`
//! and the operation as the body (`operation_accepted`); the operation shows its
//! state, progress, owner, error and a link to its result. super_admin only.
//!
//! Rule: every long action (move, drain, purge, backup, restore, fleet run)
//! is an operation row before the request is answered, and its work runs
//! under that operation's lease. A refusal of state (busy, wrong state, an
//! unknown server) is decided under the lock before the 202, so a 202
//! always means the work runs.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::http::audited::actor;
use crate::api::http::wire::{page, PageLimit};
use crate::api::http::{ApiError, AppState, ErrorCode};
use crate::auth::{Action, Principal, Resource};
use crate::domain::TenantId;
use crate::operations::{OpKind, OpState, Operation, OperationFilter};

/// An operation's state as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl OperationState {
    fn from_row(state: OpState) -> Self {
        match state {
            OpState::Pending | OpState::Queued => Self::Queued,
            OpState::Running => Self::Running,
            OpState::Succeeded => Self::Succeeded,
            OpState::Cancelled => Self::Cancelled,
            OpState::Failed | OpState::RolledBack => Self::Failed,
        }
    }

    /// The catalog states that stand for this one.
    fn rows(self) -> Vec<OpState> {
        OpState::ALL
            .into_iter()
            .filter(|state| Self::from_row(*state) == self)
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OperationProgress {
    /// Steps (tenants, for a drain or a fleet run) done so far.
    pub done: Option<i64>,
    pub total: Option<i64>,
    /// Bytes written or copied so far (a backup, a move's copy).
    pub bytes: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OperationError {
    pub code: String,
    pub message: String,
}

/// One operation, as `GET /v1/operations/{id}` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OperationView {
    pub id: Uuid,
    /// create_tenant, move, drain, fleet_run, backup, restore_backup, purge, …
    pub kind: String,
    /// The tenant it acts on; for a restore as a new tenant, the tenant
    /// restored from (the new one is its `result`).
    pub tenant_id: Option<Uuid>,
    /// What a drain or a fleet run works on: the server's id, or the run's.
    pub subject: Option<String>,
    pub state: OperationState,
    /// The step a multi-step operation is at (a move's copy, cutover, …).
    pub step: Option<String>,
    pub progress: OperationProgress,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The instance (process) that runs it; a takeover changes it.
    pub owner: Option<Uuid>,
    pub attempts: i32,
    pub cancel_requested: bool,
    /// Set when it failed or was cancelled.
    pub error: Option<OperationError>,
    /// What it made or changed, once it succeeded.
    pub result: Option<String>,
    /// A restore as a new tenant that succeeded: the subtenants it made
    /// under new slugs (slugs are unique, so `acme-eu` of a clone `acme-2`
    /// becomes `acme-2-acme-eu`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtenants_renamed: Option<Vec<RenamedSubtenantView>>,
}

/// A subtenant a restore as a new tenant made under another slug.
#[derive(Debug, Clone, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct RenamedSubtenantView {
    pub from: String,
    pub to: String,
}

impl OperationView {
    pub fn of(op: Operation) -> Self {
        let state = OperationState::from_row(op.state);
        let subject = op
            .params
            .get("subject")
            .and_then(|s| s.as_str())
            .map(str::to_string);
        let kind = Some(op.kind).filter(|k| *k != OpKind::Unknown);
        let result = match (kind, state, op.tenant_id, subject.as_deref()) {
            (_, OperationState::Failed | OperationState::Cancelled, _, _) => None,
            // A purged tenant is gone: nothing to link to.
            (Some(OpKind::Purge | OpKind::SubtenantPurge), _, _, _) => None,
            (Some(OpKind::Drain), _, _, Some(server)) => Some(format!("/v1/servers/{server}")),
            (Some(OpKind::Rebalance), _, _, _) => Some("/v1/servers/load".to_string()),
            (Some(OpKind::FleetRun), _, _, Some(run)) => Some(format!("/v1/migrations/runs/{run}")),
            (Some(OpKind::DriftScan), _, _, Some(_)) => Some("/v1/migrations/drift".to_string()),
            (Some(OpKind::FleetRevert), _, _, Some(revert)) => {
                Some(format!("/v1/migrations/reverts/{revert}"))
            }
            (Some(OpKind::Backup), OperationState::Succeeded, Some(t), Some(backup)) => {
                Some(format!("/v1/tenants/{t}/backups/{backup}"))
            }
            // As a new tenant: its tenant is the source; the result, the clone.
            (Some(OpKind::RestoreAsNew), OperationState::Succeeded, _, _) => op
                .params
                .get("new_tenant")
                .and_then(|v| v.as_str())
                .map(|t| format!("/v1/tenants/{t}")),
            (Some(OpKind::RestoreBackup), OperationState::Succeeded, _, _) => op
                .params
                .get("new_tenant")
                .and_then(|v| v.as_str())
                .map(|t| format!("/v1/tenants/{t}"))
                .or_else(|| op.tenant_id.map(|t| format!("/v1/tenants/{t}"))),
            (_, OperationState::Succeeded, Some(t), _) => Some(format!("/v1/tenants/{t}")),
            _ => None,
        };
        let error = match (state, &op.error) {
            (OperationState::Failed | OperationState::Cancelled, message) => Some(OperationError {
                code: op.error_code.clone().unwrap_or_else(|| {
                    if state == OperationState::Cancelled {
                        ErrorCode::Cancelled.to_string()
                    } else {
                        ErrorCode::OperationFailed.to_string()
                    }
                }),
                message: message.clone().unwrap_or_default(),
            }),
            _ => None,
        };
        let subject = match kind {
            Some(
                OpKind::Drain
                | OpKind::FleetRun
                | OpKind::DriftScan
                | OpKind::FleetRevert
                | OpKind::BaseBackup,
            ) => subject,
            _ => None,
        };
        Self {
            id: op.id,
            kind: op.kind.to_string(),
            tenant_id: op.tenant_id,
            subject,
            state,
            step: op.step,
            progress: OperationProgress {
                done: op.progress_done,
                total: op.progress_total,
                bytes: op.bytes,
            },
            started_at: op.created_at,
            updated_at: op.updated_at,
            finished_at: op.finished_at,
            owner: op.owner.filter(|o| !o.is_nil()),
            attempts: op.attempts,
            cancel_requested: op.cancel_requested,
            error,
            subtenants_renamed: match (kind, state) {
                (Some(OpKind::RestoreAsNew), OperationState::Succeeded) => op
                    .params
                    .get("subtenants_renamed")
                    .and_then(|v| serde_json::from_value(v.clone()).ok()),
                _ => None,
            },
            result,
        }
    }
}

/// The answer to a long command, which began operation `op` and spawned
/// its work: 202, the operation, and where to follow it.
pub async fn operation_accepted(state: &AppState, op: Uuid) -> Result<HttpResponse, ApiError> {
    let view = operation(state, op).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/v1/operations/{op}")))
        .json(view))
}

/// Operation `id` as the API shows it (a fleet run's live progress included).
async fn operation(state: &AppState, id: Uuid) -> Result<OperationView, ApiError> {
    let op =
        state.services().operations.view(id).await?.ok_or_else(|| {
            ApiError::not_found(ErrorCode::OperationNotFound, "no such operation")
        })?;
    Ok(OperationView::of(op))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this tenant's operations.
    tenant: Option<TenantId>,
    /// Only operations of this kind.
    kind: Option<OpKind>,
    state: Option<OperationState>,
    limit: Option<PageLimit>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
}

impl ListQuery {
    /// The filter (reading one more than the page, to know if there is
    /// more) and the page's size.
    fn into_filter(self) -> (OperationFilter, i64) {
        let limit = PageLimit::get(self.limit, 50);
        let filter = OperationFilter {
            tenant: self.tenant,
            kind: self.kind,
            states: self.state.map(OperationState::rows),
            before: self.cursor,
            limit: limit + 1,
        };
        (filter, limit)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperationList {
    pub operations: Vec<OperationView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// `GET /v1/operations?tenant=&kind=&state=&limit=&cursor=`: newest first.
#[utoipa::path(get, path = "/v1/operations", tag = "operations", params(ListQuery), responses((status = 200, description = "A page of operations, newest first", body = OperationList)))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    query: crate::api::http::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let (filter, limit) = query.into_inner().into_filter();
    let ops = state.services().operations.list(&filter).await?;
    let (ops, next_cursor) = page(ops, limit, |op| op.id);
    let operations = ops.into_iter().map(OperationView::of).collect();
    Ok(HttpResponse::Ok().json(OperationList {
        operations,
        next_cursor,
    }))
}

/// `GET /v1/operations/{id}`
#[utoipa::path(get, path = "/v1/operations/{id}", tag = "operations", params(("id" = uuid::Uuid, Path, description = "Operation id")), responses((status = 200, description = "The operation", body = OperationView)))]
pub async fn show(
    principal: Principal,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    Ok(HttpResponse::Ok().json(operation(&state, id.into_inner()).await?))
}

/// `POST /v1/operations/{id}/cancel`: asks a drain, a fleet run or a backup
/// to stop at its next safe point (between two tenants; a backup at once).
/// Answers 202 with the operation; it ends `cancelled`.
#[utoipa::path(post, path = "/v1/operations/{id}/cancel", tag = "operations", params(("id" = uuid::Uuid, Path, description = "Operation id")), responses((status = 202, description = "Cancel requested; the operation ends cancelled", body = OperationView)))]
pub async fn cancel(
    principal: Principal,
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let id = id.into_inner();
    let operations = &state.services().operations;
    let op = operations.cancel(&actor(&principal, &req), id).await?;
    let view = OperationView::of(op);
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/v1/operations/{id}")))
        .json(view))
}
