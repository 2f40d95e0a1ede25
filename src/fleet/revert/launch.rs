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
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::worker::Shared;
use super::RevertSummary;
use crate::catalog::{DbServer, Ending, OpKind, Operation};
use crate::error_code::ErrorCode;
use crate::fleet::launch::CANCEL_POLL;
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
        let summary = lease
            .watching_cancel(
                CANCEL_POLL,
                self.execute_revert(revert, progress, lease.cancel_token()),
            )
            .await;
        let message;
        let (ending, code, error) = match &summary {
            Err(FleetError::Abandoned(_)) => return summary,
            Err(e) => {
                message = e.to_string();
                (
                    Ending::Failed,
                    Some(ErrorCode::FleetRunFailed),
                    Some(message.as_str()),
                )
            }
            Ok(s) if s.revert.state == "succeeded" => (Ending::Succeeded, None, None),
            Ok(s) if s.revert.state == "stopped" => (
                Ending::Cancelled,
                Some(ErrorCode::Cancelled),
                s.revert.error.as_deref(),
            ),
            Ok(s) => {
                message = format!("{} tenants failed to revert", s.counts.failed);
                (
                    Ending::Failed,
                    Some(ErrorCode::TenantMigrationsFailed),
                    Some(message.as_str()),
                )
            }
        };
        lease.end(ending, code, error).await?;
        summary
    }

    /// Runs the pending items of `revert`, `concurrency` at a time.
    async fn execute_revert(
        &self,
        revert: Uuid,
        progress: FleetProgress,
        cancel: CancellationToken,
    ) -> Result<RevertSummary, FleetError> {
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
            stop: AtomicBool::new(false),
            cancel,
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
            if let Ok(Err(e)) = joined {
                // A catalog failure: stop taking items; what ran is recorded.
                shared.stop.store(true, Ordering::SeqCst);
                tracing::error!(revert = %revert, error = %e, "revert worker stopped");
            }
        }
        let counts = self.catalog.revert_counts(revert).await?;
        let stopped = shared.stop.load(Ordering::SeqCst) || shared.cancel.is_cancelled();
        let (state, error) = if stopped && counts.pending > 0 {
            (
                "stopped",
                Some("stopped; the remaining tenants are left pending"),
            )
        } else if counts.failed > 0 {
            ("failed", None)
        } else {
            ("succeeded", None)
        };
        self.catalog.set_revert_state(revert, state, error).await?;
        self.revert_summary(revert).await
    }
}
