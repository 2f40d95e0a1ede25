//! Operations as the API lists them, and the one change a caller makes to
//! one: asking it to stop (`cancel`). A cancel writes its audit record
//! first, then sets the catalog's flag, then tells this process's owner of
//! the operation at once (the others hear it on their next beat).

use uuid::Uuid;

use super::Operations;
use crate::catalog::{CancelOutcome, CatalogError, OpState, Operation, OperationFilter};
use crate::control_audit::{audited, Actor, Change};

#[derive(Debug, thiserror::Error)]
pub enum OperationsError {
    #[error("no such operation")]
    NotFound,
    #[error(
        "a {kind} operation that is {state} has no safe cancel (drains, fleet runs and backups do while they run)"
    )]
    NotCancellable { kind: String, state: &'static str },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl Operations {
    /// The operations `filter` asks for, newest first, each with its
    /// progress (`view`).
    pub async fn list(&self, filter: &OperationFilter) -> Result<Vec<Operation>, CatalogError> {
        let ops = self.catalog.list_operations(filter).await?;
        let mut shown = Vec::with_capacity(ops.len());
        for op in ops {
            shown.push(self.with_progress(op).await?);
        }
        Ok(shown)
    }

    /// Asks operation `id` to stop at its next safe point; only a running
    /// drain, fleet run or backup can.
    pub async fn cancel(&self, actor: &Actor, id: Uuid) -> Result<Operation, OperationsError> {
        let resource = format!("operations/{id}");
        let what = Change {
            tenant: None,
            action: "operations.cancel",
            resource: &resource,
        };
        let request = async {
            match self.catalog.request_cancel(id).await? {
                CancelOutcome::Requested(op) => Ok(op),
                CancelOutcome::NotCancellable(op) => Err(OperationsError::NotCancellable {
                    kind: op.kind.to_string(),
                    state: shown_state(op.state),
                }),
                CancelOutcome::Missing => Err(OperationsError::NotFound),
            }
        };
        let op = audited(&self.catalog, actor, what, request, |_| None).await?;
        self.cancel_here(op.id);
        Ok(self.with_progress(op).await?)
    }
}

/// A state as the API names it (`queued`, `running`, `succeeded`, `failed`,
/// `cancelled`).
fn shown_state(state: OpState) -> &'static str {
    match state {
        OpState::Pending | OpState::Queued => "queued",
        OpState::Running => "running",
        OpState::Succeeded => "succeeded",
        OpState::Cancelled => "cancelled",
        OpState::Failed | OpState::RolledBack => "failed",
    }
}
