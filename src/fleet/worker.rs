//! The workers of one fleet run execution: each takes pending items of a
//! wave and migrates one tenant at a time under the tenant's operation lock.
//!
//! Rules:
//! - A tenant is migrated only under its operation lock (a `migrate`
//!   operation), so a fleet item never overlaps a move, a restore or a purge
//!   of it, and its database's place is read under that lock.
//! - At most `concurrency` tenant sessions are open at once: a worker
//!   takes a permit of `Shared::sessions` before it begins a tenant's
//!   operation and opens its session (`slot.rs`). Twice as many workers
//!   take items, so one worker's catalog writes (the item taken, the
//!   operation ended) overlap another's migration instead of adding to it;
//!   a process killed mid-run leaves at most `concurrency` operations to
//!   take over.
//! - A worker that got its permit after the run was told to stop hands its
//!   item back untouched (`unclaim_item`): nothing past the stop is begun.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, SemaphorePermit};
use uuid::Uuid;

use super::halt::{Halt, Stop};
use super::slot::{NotReady, Ready, Slots};
use super::{Fleet, Progress};
use crate::catalog::{CatalogError, DbServer, ItemResult};
use crate::domain::TenantId;
use crate::migrator::{MigrateError, Outcome};
use crate::operations::Lease;

/// Workers for a run (or a revert) of `concurrency` sessions: twice as
/// many, so one worker's catalog writes overlap another's session.
pub(super) fn workers(concurrency: i32) -> usize {
    sessions(concurrency) * 2
}

/// Tenant sessions at once for a run of `concurrency`: at least one.
pub(super) fn sessions(concurrency: i32) -> usize {
    usize::try_from(concurrency).unwrap_or(1).max(1)
}

/// What the workers of one execution share.
pub(super) struct Shared {
    pub(super) fleet: Fleet,
    pub(super) run: Uuid,
    pub(super) target: i32,
    pub(super) servers: HashMap<Uuid, DbServer>,
    pub(super) max_failures: i64,
    /// Asked to stop (a cancel, too many failures, the catalog): workers
    /// take no more items; what runs finishes.
    pub(super) stop: Stop,
    pub(super) succeeded: AtomicI64,
    pub(super) failed: AtomicI64,
    pub(super) total: i64,
    pub(super) progress: Arc<dyn Fn(Progress) + Send + Sync>,
    /// Tenants recorded as drifted are migrated too (`drift_gate.rs`).
    pub(super) allow_drift: bool,
    /// One permit per tenant session the run may have open (its concurrency).
    pub(super) sessions: Semaphore,
}

/// A tenant migrated under its operation, or its item withdrawn.
enum Migrated {
    /// The lease is still to be ended; the migration took `duration_ms`.
    Done {
        lease: Box<Lease>,
        outcome: Outcome,
        duration_ms: i32,
    },
    /// The run was told to stop before the tenant was begun.
    Withdrawn,
}

/// A migration that did not succeed, and how long it ran. It keeps the
/// session permit, if it had one, until the failure is counted: a worker
/// waiting for that permit then sees the stop it may cause.
struct Failed<'a> {
    error: MigrateErrorOrPlacement,
    duration_ms: i32,
    permit: Option<SemaphorePermit<'a>>,
}

impl From<MigrateErrorOrPlacement> for Failed<'_> {
    fn from(error: MigrateErrorOrPlacement) -> Self {
        Self {
            error,
            duration_ms: 0,
            permit: None,
        }
    }
}

/// How one taken item ended.
enum Ended {
    Succeeded,
    Failed,
    /// Handed back untouched: the run was told to stop meanwhile.
    Withdrawn,
}

impl Shared {
    /// Takes items of one wave until there are none or the run must stop.
    pub(super) async fn work(self: Arc<Self>, canary: bool) -> Result<(), CatalogError> {
        while !self.stop.stopping() {
            let Some(item) = self.fleet.catalog.claim_item(self.run, canary).await? else {
                return Ok(());
            };
            if item.drifted && self.skipped_for_drift(item.tenant_id).await? {
                continue;
            }
            match self.migrate_item(item.tenant_id).await? {
                Ended::Succeeded => {
                    self.succeeded.fetch_add(1, Ordering::SeqCst);
                }
                Ended::Failed => {}
                Ended::Withdrawn => {
                    self.fleet
                        .catalog
                        .unclaim_item(self.run, item.tenant_id)
                        .await?;
                    return Ok(());
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

    /// Migrates one tenant under its operation lock and records the item:
    /// on success in the same transaction that ends the operation.
    async fn migrate_item(&self, tenant: TenantId) -> Result<Ended, CatalogError> {
        let failure = match self.migrate_locked(tenant).await {
            Ok(Migrated::Withdrawn) => return Ok(Ended::Withdrawn),
            Ok(Migrated::Done {
                lease,
                outcome,
                duration_ms,
            }) => {
                let result = ItemResult {
                    succeeded: true,
                    from_version: Some(outcome.from_version),
                    to_version: Some(outcome.to_version),
                    applied: Some(outcome.applied as i32),
                    error: None,
                    duration_ms,
                };
                let catalog = &self.fleet.catalog;
                let end =
                    catalog.finish_item_and_operation(lease.fence(), self.run, tenant, &result);
                match lease.end_by(end).await {
                    Ok(()) => return Ok(Ended::Succeeded),
                    Err(e) => Failed {
                        error: MigrateErrorOrPlacement::Catalog(e),
                        duration_ms,
                        permit: None,
                    },
                }
            }
            Err(failed) => failed,
        };
        if matches!(failure.error, MigrateErrorOrPlacement::Catalog(_)) {
            // Not the tenant's failure: the run cannot record its work.
            self.failed.fetch_add(1, Ordering::SeqCst);
            self.stop.halt(Halt::Catalog);
        } else if self.failed.fetch_add(1, Ordering::SeqCst) + 1 > self.max_failures {
            self.stop.halt(Halt::TooManyFailures);
        }
        drop(failure.permit);
        let message = error_chain(&failure.error);
        tracing::warn!(run = %self.run, tenant.id = %tenant, error = %message, "tenant migration failed");
        let result = ItemResult {
            succeeded: false,
            from_version: None,
            to_version: None,
            applied: None,
            error: Some(&message),
            duration_ms: failure.duration_ms,
        };
        self.fleet
            .catalog
            .finish_item(self.run, tenant, &result)
            .await?;
        Ok(Ended::Failed)
    }

    /// Migrates one tenant under its operation lock, so that no move,
    /// restore or purge of it runs meanwhile; where its database is comes
    /// from the catalog as read under that lock. A tenant busy with another
    /// operation is waited for a little, then left failed for a resume.
    async fn migrate_locked(&self, tenant: TenantId) -> Result<Migrated, Failed<'_>> {
        let params = serde_json::json!({ "run": self.run, "target": self.target });
        let slots = Slots {
            ops: &self.fleet.ops,
            sessions: &self.sessions,
            stop: &self.stop,
        };
        let Ready {
            permit,
            record,
            lease,
        } = match slots.ready(tenant, &params).await {
            Ok(ready) => ready,
            Err(NotReady::Withdrawn) => return Ok(Migrated::Withdrawn),
            Err(NotReady::Busy) => return Err(MigrateErrorOrPlacement::Busy.into()),
            Err(NotReady::Catalog(e)) => return Err(MigrateErrorOrPlacement::Catalog(e).into()),
        };
        let server = match record.db_server_id {
            Some(id) => self.servers.get(&id).cloned(),
            None => None,
        };
        let (Some(server), Some(db), None) = (server, &record.db_name, record.purged_at) else {
            let _ = lease.discard().await;
            return Err(MigrateErrorOrPlacement::Placement.into());
        };
        let started = Instant::now();
        let migrated = lease
            .guard(async {
                let config = self
                    .fleet
                    .provisioner
                    .admin_config(&server, db.as_str())
                    .map_err(|_| MigrateErrorOrPlacement::Placement)?;
                Ok::<_, MigrateErrorOrPlacement>(
                    self.fleet
                        .migrations()
                        .migrate_database(&config, Some(self.target))
                        .await?,
                )
            })
            .await;
        let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let permit = Some(permit);
        match migrated {
            Ok(outcome) => {
                // The session is closed: the next worker may open its own
                // while this one writes to the catalog.
                drop(permit);
                Ok(Migrated::Done {
                    lease: Box::new(lease),
                    outcome,
                    duration_ms,
                })
            }
            Err(error) => {
                if !matches!(error, MigrateErrorOrPlacement::Abandoned(_)) {
                    let _ = lease.fail(tenant, error.code(), &error_chain(&error)).await;
                }
                Err(Failed {
                    error,
                    duration_ms,
                    permit,
                })
            }
        }
    }
}

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

impl MigrateErrorOrPlacement {
    /// The code its tenant's `migrate` operation fails with.
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code::ErrorCode;
        match self {
            Self::Placement => ErrorCode::DatabaseServerUnavailable,
            Self::Busy => ErrorCode::TenantBusy,
            Self::Migrate(MigrateError::LockTimeout { .. }) => ErrorCode::MigrationLockTimeout,
            Self::Migrate(_) => ErrorCode::TenantMigrationsFailed,
            Self::Catalog(e) => e.code(),
            Self::Abandoned(_) => ErrorCode::OperationAbandoned,
        }
    }
}

/// `error: cause: cause`, for the ledger, where an operator reads why a
/// tenant failed (the SQL error sits at the end of the chain).
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
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
