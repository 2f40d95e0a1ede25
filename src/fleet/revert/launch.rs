//! A run's revert as an operation (`fleet_revert`, its subject the revert):
//! begun when the revert is requested, followed and cancelled like a fleet
//! run, and taken over by another process (or this one after a restart)
//! when its runner stops.
//!
//! Rule: at most one unfinished `fleet_revert` per revert (`launch_revert`
//! returns the running one); whoever takes one over goes on from the
//! ledger: items left running or failed are put back to pending, and each
//! is re-checked against its database before anything runs (`worker.rs`).

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::worker::Shared;
use super::RevertSummary;
use crate::catalog::{DbServer, OpKind, Operation};
use crate::fleet::halt::{run_to_end, Halt, Stop};
use crate::fleet::worker::{sessions, workers};
use crate::fleet::{Fleet, FleetError, FleetProgress};
use crate::operations::{Lease, Started};

impl Fleet {
    /// Begins running the pending items of `revert` as its operation; a
    /// runner already at work is returned instead, with no new work.
    pub(super) async fn launch_revert(
        &self,
        revert: Uuid,
        run: Uuid,
        progress: FleetProgress,
    ) -> Result<Started<RevertSummary, FleetError>, FleetError> {
        let params = serde_json::json!({ "run": run });
        let lease = match self
            .ops
            .begin_subject(OpKind::FleetRevert, revert, None, params)
            .await?
        {
            Ok(lease) => lease,
            Err(running) => return Ok(Started::already(running)),
        };
        let fleet = self.clone();
        Ok(lease.start(move |lease| {
            Box::pin(async move { fleet.execute_revert_under(revert, progress, lease).await })
        }))
    }

    /// Goes on with a revert whose runner stopped (claimed as `lease`).
    pub async fn resume_revert(&self, op: &Operation, lease: &Lease) -> Result<(), FleetError> {
        let revert = op.subject().ok_or(FleetError::NotFound)?;
        if !self.has_downs_for(revert).await? {
            // A replica of another release (a rolling upgrade) leaves the
            // revert to one that has its down migrations.
            lease
                .release("this replica does not have the revert's down migrations")
                .await;
            return Ok(());
        }
        tracing::info!(op = %op.id, revert = %revert, "resuming a revert another process left");
        lease
            .guard(async {
                self.catalog.reset_revert_for_resume(revert).await?;
                self.execute_revert_under(revert, Arc::new(|_| {}), lease)
                    .await
            })
            .await
            .map(|_| ())
    }

    /// Whether this replica's migrations have every down the revert's
    /// unfinished items need.
    async fn has_downs_for(&self, revert: Uuid) -> Result<bool, FleetError> {
        let items = self.catalog.revert_items(revert, None, i64::MAX).await?;
        Ok(items
            .iter()
            .filter(|i| matches!(i.state.as_str(), "pending" | "running" | "failed"))
            .filter_map(|i| Some((i.from_version?, i.to_version?)))
            .all(|(from, to)| self.migrations().check_revert(from, to, true).is_ok()))
    }

    /// Executes `revert` and ends its operation the way it ended.
    async fn execute_revert_under(
        &self,
        revert: Uuid,
        progress: FleetProgress,
        lease: &Lease,
    ) -> Result<RevertSummary, FleetError> {
        let work = self.execute_revert(revert, progress, lease.cancel_token());
        run_to_end(lease, work, |s| s.counts.failed, "revert").await
    }

    /// Runs the pending items of `revert`, `concurrency` at a time; returns
    /// the revert, and why it stopped early.
    async fn execute_revert(
        &self,
        revert: Uuid,
        progress: FleetProgress,
        cancel: CancellationToken,
    ) -> Result<(RevertSummary, Option<Halt>), FleetError> {
        let record = self
            .catalog
            .get_revert(revert)
            .await?
            .ok_or(FleetError::NotFound)?;
        let run = record.run_id.ok_or(FleetError::NotFound)?;
        let run_record = self
            .catalog
            .get_run(run)
            .await?
            .ok_or(FleetError::NotFound)?;
        self.catalog
            .set_revert_state(revert, "running", None)
            .await?;
        let counts = self.catalog.revert_counts(revert).await?;
        let servers: HashMap<Uuid, DbServer> = self
            .catalog
            .list_servers()
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let shared = Arc::new(Shared {
            fleet: self.clone(),
            revert,
            run_target: run_record.target_version,
            accept_data_loss: record.accept_data_loss,
            servers,
            stop: Stop::new(cancel),
            done: AtomicI64::new(counts.succeeded + counts.skipped),
            failed: AtomicI64::new(counts.failed),
            total: counts.total,
            progress,
            sessions: tokio::sync::Semaphore::new(sessions(record.concurrency)),
        });
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers(record.concurrency) {
            set.spawn(shared.clone().work());
        }
        while let Some(joined) = set.join_next().await {
            Halt::of_worker(joined, &shared.stop, |e| {
                tracing::error!(revert = %revert, error = %e, "revert worker stopped");
            });
        }
        let counts = self.catalog.revert_counts(revert).await?;
        let halt = shared.stop.ended(counts.pending);
        let state = if halt.is_some() {
            "stopped"
        } else if counts.failed > 0 {
            "failed"
        } else {
            "succeeded"
        };
        self.catalog
            .set_revert_state(revert, state, halt.map(Halt::message))
            .await?;
        Ok((self.revert_summary(revert).await?, halt))
    }
}
