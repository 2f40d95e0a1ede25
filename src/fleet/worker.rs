//! The workers of one fleet run execution: each takes pending items of a
//! wave and migrates one tenant at a time under the tenant's operation lock.
//!
//! Rule: a tenant is migrated only under its operation lock (a `migrate`
//! operation), so a fleet item never overlaps a move, a restore or a purge of
//! it, and its database's place is read under that lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Fleet, Progress};
use crate::catalog::{CatalogError, DbServer, OpKind, TenantChange};
use crate::domain::TenantId;
use crate::migrator::{MigrateError, Outcome};

/// Whether the run stopped for a cancel rather than for its failures.
pub(super) fn cancelled(shared: &Shared) -> bool {
    shared.cancel.is_cancelled()
}

/// What the workers of one execution share.
pub(super) struct Shared {
    pub(super) fleet: Fleet,
    pub(super) run: Uuid,
    pub(super) target: i32,
    pub(super) servers: HashMap<Uuid, DbServer>,
    pub(super) max_failures: i64,
    pub(super) stop: AtomicBool,
    /// Asked to stop: workers take no more items; what runs finishes.
    pub(super) cancel: CancellationToken,
    pub(super) succeeded: AtomicI64,
    pub(super) failed: AtomicI64,
    pub(super) total: i64,
    pub(super) progress: Arc<dyn Fn(Progress) + Send + Sync>,
    /// Tenants recorded as drifted are migrated too (`drift_gate.rs`).
    pub(super) allow_drift: bool,
}

impl Shared {
    /// Takes items of one wave until there are none or the run must stop.
    pub(super) async fn work(self: Arc<Self>, canary: bool) -> Result<(), CatalogError> {
        while !self.stop.load(Ordering::SeqCst) && !self.cancel.is_cancelled() {
            let Some(item) = self.fleet.catalog.claim_item(self.run, canary).await? else {
                return Ok(());
            };
            if self.skipped_for_drift(item.tenant_id).await? {
                continue;
            }
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
        match &migrated {
            Ok(outcome) => {
                let change = TenantChange {
                    schema_version: Some(outcome.to_version),
                    error: record.error.clone(),
                    ..TenantChange::default()
                };
                lease
                    .finish(tenant, None, &change)
                    .await
                    .map_err(MigrateErrorOrPlacement::Catalog)?;
            }
            Err(MigrateErrorOrPlacement::Abandoned(_)) => {}
            Err(e) => {
                let _ = lease.fail(tenant, e.code(), &error_chain(e)).await;
            }
        }
        migrated
    }
}

/// How long a fleet worker waits for a tenant busy with another operation.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(10);
pub(super) const BUSY_RETRY: Duration = Duration::from_millis(200);

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
