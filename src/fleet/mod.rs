//! Fleet migration runs, an orchestrator above the provisioner and the
//! migrator: the template first, then a canary wave, then the rest, at most
//! `concurrency` tenants at a time. A failing tenant is recorded and the run
//! goes on, until failures exceed `max_failures`; then the run stops and the
//! remaining items stay pending. Everything is in the catalog ledger, so a
//! run killed half-way is resumed without redoing finished items.
//!
//! Rule: a run migrates every active server's template before it lists its
//! tenants, so a tenant created during the run is either cloned at the new
//! version or an item of the run.

mod commands;
// Drifted tenants' items skipped unless the run allows drift (drift plumbing).
mod drift_gate;
// Why a run or a revert stopped early, and how its operation ends then.
mod halt;
mod launch;
// Lint before a run (and on demand).
mod lint_gate;
// A run's revert (down migrations), with its own ledger.
mod revert;
// A tenant's lock, then a session slot, for a run's and a revert's workers.
mod slot;
mod versions;
mod worker;

pub use commands::LaunchedRun;
pub use launch::FleetProgress;
pub use lint_gate::LintReport;
pub use revert::{LaunchedRevert, RevertOptions, RevertSummary};
pub use versions::{Behind, FleetCounts, Versions};

use halt::{Halt, Stop};
use worker::Shared;

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use tokio::sync::Semaphore;

use serde::Serialize;
use uuid::Uuid;

use crate::catalog::{
    Catalog, CatalogError, DbServer, ItemRecord, NewRun, RunCounts, RunRecord, ServerState,
};

use crate::domain::Tier;
use crate::migrator::MigrationSet;
use crate::operations::Operations;
use crate::provisioner::{ProvisionError, Provisioner};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub concurrency: usize,
    pub canary: usize,
    pub max_failures: usize,
    pub tier: Option<Tier>,
    /// Migrate up to this version; the newest when `None`.
    pub target: Option<i32>,
    /// Open every tenant database, even those the catalog records as
    /// current (which are otherwise skipped).
    pub verify: bool,
    /// Lint rules whose Error findings the run starts despite.
    pub acknowledge: Vec<String>,
    /// Migrate tenants recorded as drifted too (else their items are skipped).
    pub allow_drift: bool,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            canary: 1,
            max_failures: 0,
            tier: None,
            target: None,
            verify: false,
            acknowledge: Vec::new(),
            allow_drift: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum FleetError {
    #[error("no such migration run")]
    NotFound,
    #[error("no such revert")]
    RevertNotFound,
    #[error("the run is {0}; only a finished or stopped run can be resumed")]
    NotResumable(String),
    #[error("concurrency must be between 1 and 256")]
    BadConcurrency,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Abandoned(#[from] crate::operations::Abandoned),
    #[error("{}", lint_gate::blocked_message(.0))]
    LintFailed(Vec<crate::lint::Finding>),
    #[error("acknowledge names no lint rule this linter reports: {0}")]
    UnknownRule(String),
    // Revert.
    #[error("the run is {0}; revert it once it has finished or stopped")]
    StillRunning(String),
    #[error(transparent)]
    Revert(#[from] crate::migrator::MigrateError),
}

impl FleetError {
    /// The error code the API answers with (see `TenantsError::code`).
    pub fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code::ErrorCode;
        match self {
            Self::NotFound => ErrorCode::RunNotFound,
            Self::RevertNotFound => ErrorCode::RevertNotFound,
            Self::NotResumable(_) => ErrorCode::RunNotResumable,
            Self::BadConcurrency => ErrorCode::InvalidField,
            Self::Catalog(inner) => inner.code(),
            Self::Provision(inner) => inner.code(),
            Self::Abandoned(_) => ErrorCode::OperationAbandoned,
            Self::LintFailed(_) => ErrorCode::LintFailed,
            Self::UnknownRule(_) => ErrorCode::InvalidField,
            Self::StillRunning(_) => ErrorCode::RunNotResumable,
            Self::Revert(inner) => inner.code(),
        }
    }
}

/// Where a run stands, after each tenant.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Progress {
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// A run with its counts and its failures.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run: RunRecord,
    pub counts: RunCounts,
    pub failures: Vec<ItemRecord>,
}

#[derive(Clone)]
pub struct Fleet {
    catalog: Catalog,
    provisioner: Provisioner,
    ops: Operations,
}

impl Fleet {
    pub fn new(catalog: Catalog, provisioner: Provisioner, ops: Operations) -> Self {
        Self {
            catalog,
            provisioner,
            ops,
        }
    }

    fn migrations(&self) -> &MigrationSet {
        self.provisioner.migrations()
    }

    /// Migrates every active server's template, then records the run. Tenants
    /// created from here on are cloned from a migrated template, so none is
    /// left behind.
    pub async fn start(&self, options: &FleetOptions) -> Result<RunRecord, FleetError> {
        if !(1..=256).contains(&options.concurrency) {
            return Err(FleetError::BadConcurrency);
        }
        // Another replica's build may have applied a different file under
        // one of our versions since we started.
        self.catalog
            .check_migration_checksums(&self.migrations().checksums())
            .await?;
        let target = options
            .target
            .unwrap_or_else(|| self.migrations().latest_version());
        // Before any template is migrated: a blocked run changes nothing.
        let lint = self
            .lint_gate(options.tier, target, &options.acknowledge)
            .await?;
        for server in self.catalog.list_servers().await? {
            if server.state == ServerState::Active {
                self.provisioner.prepare_server(&server).await?;
            }
        }
        let clamp = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        Ok(self
            .catalog
            .create_run(&NewRun {
                target_version: target,
                concurrency: clamp(options.concurrency),
                canary: clamp(options.canary),
                max_failures: clamp(options.max_failures),
                tier: options.tier,
                verify: options.verify,
                lint: lint.findings,
                acknowledged: lint.acknowledged,
                allow_drift: options.allow_drift,
            })
            .await?)
    }

    /// Puts a finished or stopped run's failed and unfinished items back to
    /// pending. `force` also takes a run recorded as running, whose runner died.
    pub async fn prepare_resume(&self, run: Uuid, force: bool) -> Result<RunRecord, FleetError> {
        let record = self
            .catalog
            .get_run(run)
            .await?
            .ok_or(FleetError::NotFound)?;
        if record.state == "running" && !force {
            return Err(FleetError::NotResumable(record.state));
        }
        self.catalog
            .check_migration_checksums(&self.migrations().checksums())
            .await?;
        self.catalog.reset_run_for_resume(run).await?;
        self.catalog.get_run(run).await?.ok_or(FleetError::NotFound)
    }

    /// Runs the pending items of `run`: canaries, then the rest. `progress` is
    /// called after each tenant. Returns the run, and why it stopped early.
    async fn execute(
        &self,
        run: Uuid,
        progress: Arc<dyn Fn(Progress) + Send + Sync>,
        cancel: CancellationToken,
    ) -> Result<(RunSummary, Option<Halt>), FleetError> {
        let record = self
            .catalog
            .get_run(run)
            .await?
            .ok_or(FleetError::NotFound)?;
        self.catalog.set_run_state(run, "running", None).await?;
        let counts = self.catalog.run_counts(run).await?;
        let servers: HashMap<Uuid, DbServer> = self
            .catalog
            .list_servers()
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let shared = Arc::new(Shared {
            fleet: self.clone(),
            run,
            target: record.target_version,
            servers,
            max_failures: i64::from(record.max_failures),
            stop: Stop::new(cancel),
            succeeded: AtomicI64::new(counts.succeeded + counts.skipped),
            failed: AtomicI64::new(counts.failed),
            total: counts.total,
            progress,
            allow_drift: record.allow_drift,
            sessions: Semaphore::new(worker::sessions(record.concurrency)),
        });
        for canary in [true, false] {
            if shared.stop.stopping() {
                break;
            }
            let workers = worker::workers(record.concurrency);
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..workers {
                set.spawn(shared.clone().work(canary));
            }
            while let Some(joined) = set.join_next().await {
                Halt::of_worker(joined, &shared.stop, |e| {
                    tracing::error!(run = %run, error = %e, "fleet worker stopped");
                });
            }
        }
        let counts = self.catalog.run_counts(run).await?;
        let halt = shared.stop.ended(counts.pending);
        let state = if halt.is_some() {
            "stopped"
        } else if counts.failed > 0 {
            "failed"
        } else {
            "succeeded"
        };
        self.catalog
            .set_run_state(run, state, halt.map(Halt::message))
            .await?;
        Ok((self.summary(run).await?, halt))
    }

    pub async fn summary(&self, run: Uuid) -> Result<RunSummary, FleetError> {
        let record = self
            .catalog
            .get_run(run)
            .await?
            .ok_or(FleetError::NotFound)?;
        Ok(RunSummary {
            counts: self.catalog.run_counts(run).await?,
            failures: self.catalog.run_items(run, Some("failed"), 100).await?,
            run: record,
        })
    }
}
