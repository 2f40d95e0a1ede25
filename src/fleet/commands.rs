//! The fleet-run commands the API and the CLI share: starting a run and
//! resuming one. Each writes its audit record first (a run whose record
//! cannot be written does not start), then records the run, then begins
//! its `fleet_run` operation and spawns its work: the caller answers with
//! the operation at once, or waits for the run's end.
//!
//! The audit record covers starting the run; its progress is the run's own.

use uuid::Uuid;

use super::{Fleet, FleetError, FleetOptions, FleetProgress, RunSummary};
use crate::catalog::RunRecord;
use crate::control_audit::{audited, Actor, Change};

/// A run started or resumed: its record, its operation, and its work,
/// already running.
#[must_use = "the run goes on either way; wait for it or answer with its operation"]
pub struct LaunchedRun {
    pub run: RunRecord,
    pub op: Uuid,
    task: Option<tokio::task::JoinHandle<Result<RunSummary, FleetError>>>,
}

impl LaunchedRun {
    /// Waits for the run's end. Another runner of the run was at work
    /// already: `NotResumable`, as nothing new ran here.
    pub async fn wait(self) -> Result<RunSummary, FleetError> {
        let Some(task) = self.task else {
            return Err(FleetError::NotResumable("running".into()));
        };
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime shutting down cancels the task.
            Err(_) => Err(FleetError::Abandoned(crate::operations::Abandoned)),
        }
    }
}

impl Fleet {
    /// Migrates the templates, records a run over the fleet, and begins it.
    pub async fn start_run(
        &self,
        actor: &Actor,
        options: &FleetOptions,
        progress: FleetProgress,
    ) -> Result<LaunchedRun, FleetError> {
        let what = Change {
            tenant: None,
            action: "migrations.start",
            resource: "migration_runs",
        };
        let run = audited(&self.catalog, actor, what, self.start(options), |r| {
            Some((None, format!("migration_runs/{}", r.id)))
        })
        .await?;
        self.spawn_run(run, progress).await
    }

    /// Resumes `run`: its failed and pending items only. `force` takes over
    /// a run still marked running (the CLI, after a crash).
    pub async fn resume(
        &self,
        actor: &Actor,
        run: Uuid,
        force: bool,
        progress: FleetProgress,
    ) -> Result<LaunchedRun, FleetError> {
        let resource = format!("migration_runs/{run}");
        let what = Change {
            tenant: None,
            action: "migrations.resume",
            resource: &resource,
        };
        let resume = self.prepare_resume(run, force);
        let run = audited(&self.catalog, actor, what, resume, |_| None).await?;
        self.spawn_run(run, progress).await
    }

    /// Begins `run`'s operation and spawns its work under the operation's span.
    async fn spawn_run(
        &self,
        run: RunRecord,
        progress: FleetProgress,
    ) -> Result<LaunchedRun, FleetError> {
        let started = self.launch(run.id, progress).await?;
        let op = started.op;
        let id = run.id;
        let task = started.run.map(|work| {
            let span = tracing::info_span!("operation", op = %op);
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    let result = work.await;
                    if let Err(e) = &result {
                        tracing::error!(run = %id, error = %e, "fleet migration run failed");
                    }
                    result
                },
                span,
            ))
        });
        Ok(LaunchedRun { run, op, task })
    }
}
