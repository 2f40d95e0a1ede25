//! Fleet migration runs, an orchestrator above the provisioner and the
//! migrator: the template first, then a canary wave, then the rest, at most
//! `concurrency` tenants at a time. A failing tenant is recorded and the run
//! goes on, until failures exceed `max_failures`; then the run stops and the
//! remaining items stay pending. Everything is in the catalog ledger, so a
//! run killed half-way is resumed without redoing finished items.

mod launch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use crate::catalog::{
    Catalog, CatalogError, DbServer, ItemRecord, NewRun, RunCounts, RunRecord, ServerState,
};
use crate::catalog::{OpKind, TenantChange};
use crate::domain::{TenantId, Tier};
use crate::migrator::{MigrateError, MigrationSet, Outcome};
use crate::operations::Operations;
use crate::provisioner::{ProvisionError, Provisioner};
use std::time::Duration;

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
        }
    }
}

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum FleetError {
    #[error("no such migration run")]
    NotFound,
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
        for server in self.catalog.list_servers().await? {
            if server.state == ServerState::Active {
                self.provisioner.prepare_server(&server).await?;
            }
        }
        let target = options
            .target
            .unwrap_or_else(|| self.migrations().latest_version());
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
        self.catalog.reset_run_for_resume(run).await?;
        self.catalog.get_run(run).await?.ok_or(FleetError::NotFound)
    }

    /// Runs the pending items of `run`: canaries, then the rest. `progress` is
    /// called after each tenant.
    async fn execute(
        &self,
        run: Uuid,
        progress: Arc<dyn Fn(Progress) + Send + Sync>,
        cancel: CancellationToken,
    ) -> Result<RunSummary, FleetError> {
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
            stop: AtomicBool::new(false),
            cancel,
            succeeded: AtomicI64::new(counts.succeeded + counts.skipped),
            failed: AtomicI64::new(counts.failed),
            total: counts.total,
            progress,
        });
        for canary in [true, false] {
            if shared.stop.load(Ordering::SeqCst) || cancelled(&shared) {
                break;
            }
            let workers = usize::try_from(record.concurrency).unwrap_or(1).max(1);
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..workers {
                set.spawn(shared.clone().work(canary));
            }
            while let Some(joined) = set.join_next().await {
                if let Ok(Err(e)) = joined {
                    // A catalog failure: stop taking items; what ran is recorded.
                    shared.stop.store(true, Ordering::SeqCst);
                    tracing::error!(run = %run, error = %e, "fleet worker stopped");
                }
            }
        }
        let counts = self.catalog.run_counts(run).await?;
        let stopped = shared.stop.load(Ordering::SeqCst) || cancelled(&shared);
        let state = if stopped && counts.pending > 0 {
            "stopped"
        } else if counts.failed > 0 {
            "failed"
        } else {
            "succeeded"
        };
        let error = (state == "stopped").then_some(if cancelled(&shared) {
            "cancelled; remaining tenants left pending"
        } else {
            "failures exceeded max_failures; remaining tenants left pending"
        });
        self.catalog.set_run_state(run, state, error).await?;
        self.summary(run).await
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

/// Whether the run stopped for a cancel rather than for its failures.
fn cancelled(shared: &Shared) -> bool {
    shared.cancel.is_cancelled()
}

/// What the workers of one execution share.
struct Shared {
    fleet: Fleet,
    run: Uuid,
    target: i32,
    servers: HashMap<Uuid, DbServer>,
    max_failures: i64,
    stop: AtomicBool,
    /// Asked to stop: workers take no more items; what runs finishes.
    cancel: CancellationToken,
    succeeded: AtomicI64,
    failed: AtomicI64,
    total: i64,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
}

impl Shared {
    /// Takes items of one wave until there are none or the run must stop.
    async fn work(self: Arc<Self>, canary: bool) -> Result<(), CatalogError> {
        while !self.stop.load(Ordering::SeqCst) && !self.cancel.is_cancelled() {
            let Some(item) = self.fleet.catalog.claim_item(self.run, canary).await? else {
                return Ok(());
            };
            let started = std::time::Instant::now();
            let outcome = self.migrate_locked(item.tenant_id).await;
            let elapsed = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
            match outcome {
                Ok(o) => {
                    self.fleet
                        .catalog
                        .finish_item(
                            self.run,
                            item.tenant_id,
                            true,
                            Some(o.from_version),
                            Some(o.to_version),
                            Some(o.applied as i32),
                            None,
                            elapsed,
                        )
                        .await?;
                    self.succeeded.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    let message = error_chain(&e);
                    tracing::warn!(run = %self.run, tenant.id = %item.tenant_id, error = %message, "tenant migration failed");
                    self.fleet
                        .catalog
                        .finish_item(
                            self.run,
                            item.tenant_id,
                            false,
                            None,
                            None,
                            None,
                            Some(&message),
                            elapsed,
                        )
                        .await?;
                    if self.failed.fetch_add(1, Ordering::SeqCst) + 1 > self.max_failures {
                        self.stop.store(true, Ordering::SeqCst);
                    }
                }
            }
            (self.progress)(Progress {
                total: self.total,
                succeeded: self.succeeded.load(Ordering::SeqCst),
                failed: self.failed.load(Ordering::SeqCst),
            });
            crate::failpoint!("fleet.between_items");
        }
        Ok(())
    }

    /// Migrates one tenant under its operation lock, so that no move,
    /// restore or purge of it runs meanwhile; where its database is comes
    /// from the catalog as read under that lock. A tenant busy with another
    /// operation is waited for a little, then left failed for a resume.
    async fn migrate_locked(&self, tenant: TenantId) -> Result<Outcome, MigrateErrorOrPlacement> {
        let mut waited = Duration::ZERO;
        let (record, lease) = loop {
            match self
                .fleet
                .ops
                .begin(
                    tenant,
                    OpKind::Migrate,
                    &serde_json::json!({ "run": self.run, "target": self.target }),
                )
                .await
            {
                Ok(begun) => break begun,
                Err(CatalogError::TenantBusy) if waited < BUSY_WAIT => {
                    tokio::time::sleep(BUSY_RETRY).await;
                    waited += BUSY_RETRY;
                }
                Err(CatalogError::TenantBusy) => return Err(MigrateErrorOrPlacement::Busy),
                Err(e) => return Err(MigrateErrorOrPlacement::Catalog(e)),
            }
        };
        let server = match record.db_server_id {
            Some(id) => self.servers.get(&id).cloned(),
            None => None,
        };
        let (Some(server), Some(db), None) = (server, &record.db_name, record.purged_at) else {
            let _ = lease.discard().await;
            return Err(MigrateErrorOrPlacement::Placement);
        };
        let migrated = lease
            .guard(async {
                let config = self
                    .fleet
                    .provisioner
                    .admin_config(&server, db)
                    .map_err(|_| MigrateErrorOrPlacement::Placement)?;
                Ok::<_, MigrateErrorOrPlacement>(
                    self.fleet
                        .migrations()
                        .migrate_database(&config, Some(self.target))
                        .await?,
                )
            })
            .await;
        match &migrated {
            Ok(outcome) => {
                let change = TenantChange {
                    schema_version: Some(outcome.to_version),
                    error: record.error.clone(),
                    ..TenantChange::default()
                };
                lease
                    .finish(tenant, true, None, &change)
                    .await
                    .map_err(MigrateErrorOrPlacement::Catalog)?;
            }
            Err(MigrateErrorOrPlacement::Abandoned(_)) => {}
            Err(e) => {
                let _ = lease.fail(tenant, &error_chain(e)).await;
            }
        }
        migrated
    }
}

/// How long a fleet worker waits for a tenant busy with another operation.
const BUSY_WAIT: Duration = Duration::from_secs(10);
const BUSY_RETRY: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
enum MigrateErrorOrPlacement {
    #[error("the tenant's database server is not usable")]
    Placement,
    #[error("another operation on this tenant is in progress; resume the run to retry it")]
    Busy,
    #[error("{0}")]
    Migrate(#[from] MigrateError),
    #[error("the catalog failed")]
    Catalog(#[source] CatalogError),
    #[error(transparent)]
    Abandoned(#[from] crate::operations::Abandoned),
}

/// `error: cause: cause`, for the ledger, where an operator reads why a
/// tenant failed (the SQL error sits at the end of the chain).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
