//! Operations as the API shows them: reading and listing them, progress,
//! cancel requests, and the operations that are not about one tenant's
//! lifecycle (a drain, a fleet run, a backup). Those have a `subject` in
//! their params (the server drained, the run), at most one unfinished per
//! subject, and finish without touching a tenant row.
//!
//! Rules:
//! - A cancel is a flag on the operation row (`request_cancel`), taken only
//!   by the kinds that can stop at a step boundary (`CANCELLABLE`: drains,
//!   fleet runs, backups, drift scans); any other kind is refused, unchanged.

use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::fencing::{operation_from_row, Fence, Operation, Owner, OPERATION_COLUMNS};
use super::{Catalog, CatalogError, OpKind, OpState};
use crate::domain::TenantId;
use crate::error_code::ErrorCode;

/// How an operation ended, as its row records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    Failed,
    Cancelled,
}

impl From<Ending> for OpState {
    fn from(ending: Ending) -> Self {
        match ending {
            Ending::Succeeded => Self::Succeeded,
            Ending::Failed => Self::Failed,
            Ending::Cancelled => Self::Cancelled,
        }
    }
}

/// Which operations a listing shows; `before` is the cursor (the last id
/// of the previous page).
#[derive(Debug, Clone, Default)]
pub struct OperationFilter {
    pub tenant: Option<TenantId>,
    pub kind: Option<OpKind>,
    /// The catalog states that stand for the state asked for.
    pub states: Option<Vec<OpState>>,
    pub before: Option<Uuid>,
    pub limit: i64,
}

/// What a cancel request found.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// Recorded; the owner stops at its next safe point.
    Requested(Operation),
    /// The operation is finished, or of a kind with no safe cancel.
    NotCancellable(Operation),
    Missing,
}

/// The kinds whose work can stop safely part-way.
pub const CANCELLABLE: [OpKind; 6] = [
    OpKind::Drain,
    OpKind::Rebalance,
    OpKind::FleetRun,
    OpKind::Backup,
    OpKind::DriftScan,
    OpKind::FleetRevert,
];

impl Catalog {
    pub async fn get_operation(&self, id: Uuid) -> Result<Option<Operation>, CatalogError> {
        self.read_opt(
            &format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1"),
            &[&id],
            operation_from_row,
        )
        .await
    }

    /// Operations newest first.
    pub async fn list_operations(
        &self,
        filter: &OperationFilter,
    ) -> Result<Vec<Operation>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {OPERATION_COLUMNS} FROM operations
                  WHERE ($1::uuid IS NULL OR tenant_id = $1)
                    AND ($2::text IS NULL OR kind = $2)
                    AND ($3::text[] IS NULL OR state = ANY($3))
                    AND ($4::uuid IS NULL OR id < $4)
                  ORDER BY id DESC LIMIT $5"
            ),
            &[
                &filter.tenant.map(|t| t.as_uuid()),
                &filter.kind,
                &filter.states,
                &filter.before,
                &filter.limit,
            ],
            operation_from_row,
        )
        .await
    }

    /// Asks a running drain, fleet run or backup to stop.
    pub async fn request_cancel(&self, id: Uuid) -> Result<CancelOutcome, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE operations SET cancel_requested = true, updated_at = updated_at
                      WHERE id = $1 AND state IN ('pending', 'queued', 'running') AND kind = ANY($2)
                      RETURNING {OPERATION_COLUMNS}"
                ),
                &[&id, &CANCELLABLE.as_slice()],
            )
            .await?;
        if let Some(row) = row {
            return Ok(CancelOutcome::Requested(operation_from_row(&row)));
        }
        drop(client);
        Ok(match self.get_operation(id).await? {
            Some(op) => CancelOutcome::NotCancellable(op),
            None => CancelOutcome::Missing,
        })
    }

    /// Begins an operation on `subject` (a server, a run) rather than on a
    /// tenant's lifecycle. `None` when one of this kind on this subject is
    /// unfinished already: its id is returned instead.
    pub async fn begin_subject_operation(
        &self,
        kind: OpKind,
        subject: Uuid,
        tenant: Option<TenantId>,
        params: serde_json::Value,
        owner: Owner,
    ) -> Result<Result<Fence, Uuid>, CatalogError> {
        let mut params = params;
        params["subject"] = serde_json::json!(subject.to_string());
        let id = Uuid::now_v7();
        let client = self.pool().get().await?;
        let inserted = client
            .execute(
                "INSERT INTO operations (id, kind, tenant_id, state, attempts, params, owner, owner_key)
                 VALUES ($1, $2, $3, 'running', 1, $4, $5, $6)",
                &[
                    &id,
                    &kind,
                    &tenant.map(|t| t.as_uuid()),
                    &params,
                    &owner.id,
                    &owner.key,
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(Ok(Fence {
                op: id,
                generation: 1,
            })),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                let row = client
                    .query_opt(
                        "SELECT id FROM operations
                          WHERE kind = $1 AND params ->> 'subject' = $2
                            AND state IN ('pending', 'queued', 'running')",
                        &[&kind, &subject.to_string()],
                    )
                    .await?;
                match row {
                    Some(r) => Ok(Err(r.get(0))),
                    // It finished in between: the caller may try again.
                    None => Err(CatalogError::TenantBusy),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Finishes an operation that changes no tenant row (fenced).
    pub async fn end_operation(
        &self,
        fence: Fence,
        ending: Ending,
        code: Option<ErrorCode>,
        error: Option<&str>,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "UPDATE operations SET state = $3, error_code = $4, error = $5,
                        finished_at = now(), updated_at = now()
                  WHERE id = $1 AND generation = $2 AND state = 'running'",
                &[
                    &fence.op,
                    &fence.generation,
                    &OpState::from(ending),
                    &code.map(ErrorCode::as_str),
                    &error,
                ],
            )
            .await?;
        if n == 1 {
            Ok(())
        } else {
            Err(CatalogError::Fenced)
        }
    }

    /// Records progress: steps done out of total, and bytes (fenced; a
    /// stale writer's progress is dropped).
    pub async fn record_progress(
        &self,
        fence: Fence,
        done: Option<i64>,
        total: Option<i64>,
        bytes: Option<i64>,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE operations SET progress_done = coalesce($3, progress_done),
                        progress_total = coalesce($4, progress_total),
                        bytes = coalesce($5, bytes), updated_at = clock_timestamp()
                  WHERE id = $1 AND generation = $2 AND state = 'running'",
                &[&fence.op, &fence.generation, &done, &total, &bytes],
            )
            .await?;
        Ok(())
    }
}
