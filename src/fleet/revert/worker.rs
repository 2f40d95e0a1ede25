//! The workers of one revert execution: each takes pending items and
//! reverts one tenant at a time under the tenant's operation lock (a
//! `migrate` operation, as a fleet item's), re-checking the tenant there.
//!
//! Rules:
//! - A tenant is reverted only when, under its lock, the catalog still
//!   records it at the run's target and its database's own history says it
//!   is there. One found at its pre-run version (a revert that finished
//!   before a restart) is recorded as reverted with nothing run; one found
//!   anywhere else is skipped with the reason.
//! - As in a fleet run (`fleet/worker.rs`, `fleet/slot.rs`), twice the
//!   concurrency in workers, and a session permit held from the tenant's
//!   operation begun to its session closed: at most `concurrency` of them
//!   at once. An item whose permit came after a cancel is handed back
//!   untouched.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use uuid::Uuid;

use crate::catalog::{CatalogError, DbServer, RevertItem, MOVED_ON, PURGED};
use crate::fleet::halt::Stop;
use crate::fleet::slot::{NotReady, Ready, Slots};
use crate::fleet::worker::error_chain;
use crate::fleet::{Fleet, Progress};
use crate::migrator::MigrateError;
use crate::operations::Lease;

/// What the workers of one execution share.
pub(super) struct Shared {
    pub(super) fleet: Fleet,
    pub(super) revert: Uuid,
    /// The run's target: where a tenant must still be to be reverted.
    pub(super) run_target: i32,
    pub(super) accept_data_loss: bool,
    pub(super) servers: HashMap<Uuid, DbServer>,
    /// A catalog failure or a cancel: take no more items.
    pub(super) stop: Stop,
    pub(super) done: AtomicI64,
    pub(super) failed: AtomicI64,
    pub(super) total: i64,
    pub(super) progress: Arc<dyn Fn(Progress) + Send + Sync>,
    /// One permit per tenant session the revert may have open.
    pub(super) sessions: tokio::sync::Semaphore,
}

/// An item's state when it was handed back untouched.
const WITHDRAWN: &str = "pending";

/// How one item ended: its state and why.
struct Ended {
    state: &'static str,
    reason: Option<String>,
    /// Written already, with the tenant's operation.
    recorded: bool,
}

impl Ended {
    fn skipped(reason: impl Into<String>) -> Self {
        Self::new("skipped", Some(reason.into()))
    }

    fn new(state: &'static str, reason: Option<String>) -> Self {
        Self {
            state,
            reason,
            recorded: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ItemError {
    #[error("another operation on this tenant is in progress; the revert's resume retries it")]
    Busy,
    #[error("the tenant's database server is not usable")]
    Placement,
    #[error("{0}")]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Abandoned(#[from] crate::operations::Abandoned),
}

impl Shared {
    /// Takes items until there are none or the revert must stop.
    pub(super) async fn work(self: Arc<Self>) -> Result<(), CatalogError> {
        while !self.stop.stopping() {
            let catalog = &self.fleet.catalog;
            let Some(item) = catalog.claim_revert_item(self.revert).await? else {
                return Ok(());
            };
            let ended = match self.revert_locked(&item).await {
                Ok(ended) => ended,
                Err(ItemError::Catalog(e)) => return Err(e),
                Err(e) => {
                    let message = error_chain(&e);
                    tracing::warn!(revert = %self.revert, tenant.id = %item.tenant_id, error = %message, "tenant revert failed");
                    Ended::new("failed", Some(message))
                }
            };
            if ended.state == WITHDRAWN {
                catalog
                    .unclaim_revert_item(self.revert, item.tenant_id)
                    .await?;
                return Ok(());
            }
            if !ended.recorded {
                catalog
                    .finish_revert_item(
                        self.revert,
                        item.tenant_id,
                        ended.state,
                        ended.reason.as_deref(),
                    )
                    .await?;
            }
            if ended.state == "failed" {
                self.failed.fetch_add(1, Ordering::SeqCst);
            } else {
                self.done.fetch_add(1, Ordering::SeqCst);
            }
            (self.progress)(Progress {
                total: self.total,
                succeeded: self.done.load(Ordering::SeqCst),
                failed: self.failed.load(Ordering::SeqCst),
            });
            crate::failpoint!("fleet_revert.between_items");
        }
        Ok(())
    }

    /// Reverts one tenant under its operation lock, after the re-checks.
    async fn revert_locked(&self, item: &RevertItem) -> Result<Ended, ItemError> {
        let (Some(_), Some(to)) = (item.from_version, item.to_version) else {
            return Ok(Ended::skipped(crate::catalog::NOT_MOVED));
        };
        let params = serde_json::json!({ "revert": self.revert, "target": to });
        let slots = Slots {
            ops: &self.fleet.ops,
            sessions: &self.sessions,
            stop: &self.stop,
        };
        // A slot, then the lock, as in a fleet run (`fleet/slot.rs`).
        let Ready {
            permit,
            record,
            lease,
        } = match slots.ready(item.tenant_id, &params).await {
            Ok(ready) => ready,
            Err(NotReady::Withdrawn) => return Ok(Ended::new(WITHDRAWN, None)),
            Err(NotReady::Busy) => return Err(ItemError::Busy),
            Err(NotReady::Catalog(e)) => return Err(e.into()),
        };
        let (Some(db), None) = (&record.db_name, record.purged_at) else {
            lease.discard().await?;
            return Ok(Ended::skipped(PURGED));
        };
        let Some(server) = record.db_server_id.and_then(|id| self.servers.get(&id)) else {
            lease.discard().await?;
            return Err(ItemError::Placement);
        };
        // Moved on meanwhile (a later run, a migration on request): never reverted.
        let target = self.run_target;
        if record.schema_version != target && record.schema_version != to {
            lease.discard().await?;
            return Ok(Ended::skipped(MOVED_ON));
        }
        let config = match self.fleet.provisioner.admin_config(server, db.as_str()) {
            Ok(config) => config,
            Err(_) => {
                lease.discard().await?;
                return Err(ItemError::Placement);
            }
        };
        let reverted = lease
            .guard(async {
                // Reverted only from at most the run's target, as the
                // database's own history says under its lock: a revert that
                // committed before a crash is not run again (nothing is above
                // `to`), one cut short goes on, and one session does it all.
                let outcome = self
                    .fleet
                    .migrations()
                    .revert_database_from(&config, Some(target), to, self.accept_data_loss)
                    .await?;
                if outcome.applied == 0 {
                    // Found at `to` (reverted before a restart), or elsewhere: left.
                    return Ok::<_, ItemError>((outcome.from_version == to).then_some((to, false)));
                }
                // Its database is reverted; neither the ledger nor the catalog says so yet.
                crate::failpoint!("fleet_revert.after_tenant");
                Ok(Some((outcome.to_version, true)))
            })
            .await;
        // The session is closed: the next worker may open its own.
        drop(permit);
        self.record(item, &lease, reverted).await
    }

    /// Ends the tenant's operation the way its revert went.
    async fn record(
        &self,
        item: &RevertItem,
        lease: &Lease,
        reverted: Result<Option<(i32, bool)>, ItemError>,
    ) -> Result<Ended, ItemError> {
        match reverted {
            Ok(Some((version, ran))) => {
                let reason = (!ran).then(|| format!("already at version {version}"));
                let end = self.fleet.catalog.finish_revert_item_and_operation(
                    lease.fence(),
                    self.revert,
                    item.tenant_id,
                    version,
                    reason.as_deref(),
                );
                lease.end_by(end).await?;
                Ok(Ended {
                    state: "succeeded",
                    reason,
                    recorded: true,
                })
            }
            Ok(None) => {
                lease.discard().await?;
                Ok(Ended::skipped(MOVED_ON))
            }
            Err(e @ ItemError::Abandoned(_)) => Err(e),
            Err(e) => {
                let code = match &e {
                    ItemError::Migrate(inner) => inner.code(),
                    _ => crate::error_code::ErrorCode::TenantMigrationsFailed,
                };
                lease.fail(item.tenant_id, code, &error_chain(&e)).await?;
                Err(e)
            }
        }
    }
}
