//! The revert command the API and the CLI share: it writes its audit
//! record first (a revert whose record cannot be written does not start),
//! plans the revert, then begins its `fleet_revert` operation and spawns
//! its work: the caller answers with the operation at once, or waits.

use uuid::Uuid;

use super::{RevertOptions, RevertSummary};
use crate::catalog::RevertRecord;
use crate::control_audit::{audited, Actor, Change};
use crate::fleet::{Fleet, FleetError, FleetProgress};

/// A revert begun: its record, its operation, and its work, already running.
#[must_use = "the revert goes on either way; wait for it or answer with its operation"]
pub struct LaunchedRevert {
    pub revert: RevertRecord,
    pub op: Uuid,
    task: Option<tokio::task::JoinHandle<Result<RevertSummary, FleetError>>>,
}

impl LaunchedRevert {
    /// Waits for the revert's end. Another runner of it was at work
    /// already: `NotResumable`, as nothing new ran here.
    pub async fn wait(self) -> Result<RevertSummary, FleetError> {
        let Some(task) = self.task else {
            return Err(FleetError::NotResumable("running".into()));
        };
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(FleetError::Abandoned(crate::operations::Abandoned)),
        }
    }

    /// Whether this request began the work (false: it joined a revert
    /// already under way).
    pub fn began(&self) -> bool {
        self.task.is_some()
    }
}

impl Fleet {
    /// Takes back the tenants `run` moved forward, to their pre-run
    /// versions; joins the run's unfinished revert if there is one.
    pub async fn revert_run(
        &self,
        actor: &Actor,
        run: Uuid,
        options: &RevertOptions,
        progress: FleetProgress,
    ) -> Result<LaunchedRevert, FleetError> {
        let resource = format!("migration_runs/{run}");
        let what = Change {
            tenant: None,
            action: "migrations.revert",
            resource: &resource,
        };
        let plan = self.plan_revert(run, options);
        let revert = audited(&self.catalog, actor, what, plan, |r| {
            Some((None, format!("migration_reverts/{}", r.id)))
        })
        .await?;
        let started = self.launch_revert(revert.id, run, progress).await?;
        let (op, id) = (started.op, revert.id);
        let task = started.run.map(|work| {
            let span = tracing::info_span!("operation", op = %op);
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    let result = work.await;
                    if let Err(e) = &result {
                        tracing::error!(revert = %id, error = %e, "revert of a migration run failed");
                    }
                    result
                },
                span,
            ))
        });
        Ok(LaunchedRevert { revert, op, task })
    }
}
