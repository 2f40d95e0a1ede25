//! A fleet run as an operation (`fleet_run`, its subject the run): begun
//! when the run starts or resumes, so it can be followed, cancelled, and
//! taken over by another process (or this one after a restart) when its
//! runner stops.
//!
//! Rule: at most one unfinished `fleet_run` per run (`launch` returns the
//! running one); whoever takes one over runs it again from where the ledger
//! says it stands (its pending items, failed and interrupted ones put back),
//! so a shutdown or a crash never abandons a run.

use std::sync::Arc;

use uuid::Uuid;

use super::halt::run_to_end;
use super::{Fleet, FleetError, Progress, RunSummary};
use crate::catalog::{OpKind, Operation};
use crate::operations::{Lease, Started};

/// Called after each tenant.
pub type FleetProgress = Arc<dyn Fn(Progress) + Send + Sync>;

impl Fleet {
    /// Begins running the pending items of `run` as its operation; a runner
    /// of that run already at work is returned instead, with no new work.
    pub async fn launch(
        &self,
        run: Uuid,
        progress: FleetProgress,
    ) -> Result<Started<RunSummary, FleetError>, FleetError> {
        let lease = match self
            .ops
            .begin_subject(OpKind::FleetRun, run, None, serde_json::json!({}))
            .await?
        {
            Ok(lease) => lease,
            Err(running) => return Ok(Started::already(running)),
        };
        let fleet = self.clone();
        Ok(lease.start(move |lease| {
            Box::pin(async move { fleet.execute_under(run, progress, lease).await })
        }))
    }

    /// Runs `run` to its end (the CLI).
    pub async fn execute_run(
        &self,
        run: Uuid,
        progress: FleetProgress,
    ) -> Result<RunSummary, FleetError> {
        match self.launch(run, progress).await?.run {
            Some(work) => work.await,
            None => Err(FleetError::NotResumable("running".into())),
        }
    }

    /// Goes on with a run whose runner stopped (claimed as `lease`).
    pub async fn resume_run(&self, op: &Operation, lease: &Lease) -> Result<(), FleetError> {
        let run = op.subject().ok_or(FleetError::NotFound)?;
        let record = self
            .catalog
            .get_run(run)
            .await?
            .ok_or(FleetError::NotFound)?;
        if record.target_version > self.migrations().latest_version() {
            // A replica of an older release (a rolling upgrade) leaves the
            // run to one that has its migrations.
            lease
                .release("this replica does not have the run's target migrations")
                .await;
            return Ok(());
        }
        tracing::info!(op = %op.id, run = %run, "resuming a fleet run another process left");
        lease
            .guard(async {
                self.prepare_resume(run, true).await?;
                self.execute_under(run, Arc::new(|_| {}), lease).await
            })
            .await
            .map(|_| ())
    }

    /// Executes `run` and ends its operation the way the run ended.
    async fn execute_under(
        &self,
        run: Uuid,
        progress: FleetProgress,
        lease: &Lease,
    ) -> Result<RunSummary, FleetError> {
        let work = self.execute(run, progress, lease.cancel_token());
        run_to_end(lease, work, |s| s.counts.failed, "migrate").await
    }
}
