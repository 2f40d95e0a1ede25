//! Operations as their followers read them (`GET /v1/operations/{id}`, a
//! long command's answer): the row, with a fleet run's progress counted
//! from its items while the run has not stored its own.

use uuid::Uuid;

use super::Operations;
use crate::catalog::{CatalogError, OpKind, OpState, Operation};

impl Operations {
    /// Operation `id`, or `None` when there is no such operation.
    pub async fn view(&self, id: Uuid) -> Result<Option<Operation>, CatalogError> {
        match self.catalog.get_operation(id).await? {
            Some(op) => Ok(Some(self.with_progress(op).await?)),
            None => Ok(None),
        }
    }

    /// `op`, with a fleet run's progress counted from its items while the
    /// run has not stored its own.
    pub(super) async fn with_progress(&self, mut op: Operation) -> Result<Operation, CatalogError> {
        // A failed or cancelled run links to nothing, so its count is left
        // as stored.
        let ended_badly = matches!(
            op.state,
            OpState::Failed | OpState::RolledBack | OpState::Cancelled
        );
        let run = op.subject();
        if let (OpKind::FleetRun, None, false, Some(run)) =
            (op.kind, op.progress_done, ended_badly, run)
        {
            let counts = self.catalog.run_counts(run).await?;
            op.progress_done = Some(counts.succeeded + counts.skipped + counts.failed);
            op.progress_total = Some(counts.total);
        }
        // A run's revert: its items, as a run's.
        if let (OpKind::FleetRevert, None, false, Some(revert)) =
            (op.kind, op.progress_done, ended_badly, run)
        {
            let counts = self.catalog.revert_counts(revert).await?;
            op.progress_done = Some(counts.succeeded + counts.skipped + counts.failed);
            op.progress_total = Some(counts.total);
        }
        Ok(op)
    }
}
