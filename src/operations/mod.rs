//! Running operations safely among replicas: each one is begun (or taken
//! over) under this process's owner lease (`instance.rs`), beats while it
//! runs, and is abandoned the moment this process can no longer be sure it
//! still owns it:
//! - its lease on the catalog ended (a peer may take the operation over now);
//! - a heartbeat found it claimed by another process (a new generation);
//! - no heartbeat got through for `deadline`, which is half the takeover
//!   threshold (`reconciler.stale_after_secs`), so the owner always stops
//!   before anyone may claim an operation for want of beats.
//!
//! Abandoning cancels the operation's work (`Lease::guard`). Every write it
//! would make afterwards is fenced in the catalog anyway (`Fence`), and its
//! destructive steps re-check under the operation's row lock (`Lease::hold`).
//!
//! Rules:
//! - An owner beats every sixth of `reconciler.stale_after_secs` and stops
//!   after half of it without a beat (`Timing`): beat < deadline <
//!   stale_after, so it always abandons before a peer may claim for want of
//!   beats.
//! - A cancel request (the catalog's flag) reaches the owner at once when it
//!   runs in this process (`cancel_here`), and on its next beat, or its next
//!   step's check, otherwise.
//! - A begin runs to its end even when its caller stops waiting (`detached`):
//!   the lease of an answer nobody takes is dropped, which releases the
//!   operation for any reconciler at once, rather than leaving it `running`
//!   under a live owner until it looks stale.

mod instance;
mod lease;
mod queries;
mod view;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use instance::Instance;
pub use lease::{Held, Lease};
pub use queries::OperationsError;

// What callers of the queries read and filter by.
pub use crate::catalog::{OpKind, OpState, Operation, OperationFilter};

use crate::catalog::{Catalog, CatalogError, Fence, NewTenant, Owner, TenantRecord};
use crate::domain::TenantId;

/// The operation's work stopped because this process no longer owns it.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("this process lost its claim on the operation; another one finishes it")]
pub struct Abandoned;

/// A long operation begun: its checks passed (under the tenant's lock,
/// where it has one) and its row is written, so a request can be answered
/// at once (202) and followed through the operation; `run` does the work
/// and finishes the operation. `run` is `None` when an equal operation was
/// running already, and `op` names that one.
pub struct Started<T, E> {
    pub op: Uuid,
    pub run: Option<futures_util::future::BoxFuture<'static, Result<T, E>>>,
}

impl<T, E> Started<T, E> {
    /// Operation `op`, whose work `run` is.
    pub fn new(op: Uuid, run: impl Future<Output = Result<T, E>> + Send + 'static) -> Self {
        Self {
            op,
            run: Some(Box::pin(run)),
        }
    }

    /// An equal operation, `op`, runs already: nothing new to do.
    pub fn already(op: Uuid) -> Self {
        Self { op, run: None }
    }
}

/// The intervals of the ownership protocol, all derived from the takeover
/// threshold so that they keep their order: beat < deadline < stale_after.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How often a running operation beats.
    pub beat: Duration,
    /// How long an owner goes on without a beat getting through.
    pub deadline: Duration,
    /// How long a peer waits for beats before it takes over an operation
    /// whose owner still holds its lease (a hung or paused process).
    pub stale_after: Duration,
}

impl Timing {
    pub fn from_stale_after(stale_after: Duration) -> Self {
        Self {
            beat: (stale_after / 6).max(Duration::from_millis(100)),
            deadline: stale_after / 2,
            stale_after,
        }
    }
}

/// Begins, takes over and tracks the operations of this process.
#[derive(Clone)]
pub struct Operations {
    catalog: Catalog,
    instance: Instance,
    in_flight: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
    timing: Timing,
}

impl Operations {
    /// Takes this process's owner lease, kept until `shutdown`.
    pub async fn start(
        catalog: Catalog,
        stale_after: Duration,
        shutdown: CancellationToken,
    ) -> Result<Self, CatalogError> {
        let instance = Instance::start(catalog.config().clone(), shutdown).await?;
        Ok(Self {
            catalog,
            instance,
            in_flight: Arc::default(),
            timing: Timing::from_stale_after(stale_after),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    fn owner(&self) -> Result<Owner, CatalogError> {
        self.instance.owner().ok_or(CatalogError::NoLease)
    }

    /// Begins an operation on an existing tenant; the record is the tenant
    /// as read under its lock (see `Catalog::begin_operation`).
    pub async fn begin(
        &self,
        tenant: TenantId,
        kind: OpKind,
        params: &serde_json::Value,
    ) -> Result<(TenantRecord, Lease), CatalogError> {
        let (this, params) = (self.clone(), params.clone());
        detached(async move {
            let owner = this.owner()?;
            let (record, fence) = this
                .catalog
                .begin_operation(Uuid::now_v7(), tenant, kind, &params, owner)
                .await?;
            Ok((record, this.track(fence, owner)))
        })
        .await
    }

    /// Inserts a tenant with its first operation (see `Catalog::insert_tenant`).
    pub async fn begin_with_tenant(
        &self,
        new: &NewTenant,
        kind: OpKind,
    ) -> Result<(TenantRecord, Lease), CatalogError> {
        let (this, new) = (self.clone(), new.clone());
        detached(async move {
            let owner = this.owner()?;
            let (record, fence) = this
                .catalog
                .insert_tenant(&new, Uuid::now_v7(), kind, false, owner)
                .await?;
            Ok((record, this.track(fence, owner)))
        })
        .await
    }

    /// Inserts a tenant with an operation that is finished already (a
    /// subtenant: a catalog row and nothing else).
    pub async fn insert_finished(
        &self,
        new: &NewTenant,
        kind: OpKind,
    ) -> Result<(TenantRecord, Fence), CatalogError> {
        let owner = self.owner()?;
        self.catalog
            .insert_tenant(new, Uuid::now_v7(), kind, true, owner)
            .await
    }

    /// Takes over an operation another process left (see
    /// `Catalog::claimable_operations`); `None` when someone else did first,
    /// or this process runs it already.
    pub async fn claim(&self, seen: &Operation) -> Result<Option<Lease>, CatalogError> {
        if self.running_here(seen.id) {
            return Ok(None);
        }
        let owner = self.owner()?;
        Ok(self
            .catalog
            .claim_operation(seen, owner, self.timing.stale_after)
            .await?
            .map(|fence| self.track(fence, owner)))
    }

    /// Whether this process runs `op` now.
    pub fn running_here(&self, op: Uuid) -> bool {
        self.in_flight
            .lock()
            .expect("in-flight set")
            .contains_key(&op)
    }

    /// Passes a cancel request on to `op` at once when this process runs
    /// it (others see the catalog's flag on their next beat).
    pub fn cancel_here(&self, op: Uuid) {
        if let Some(token) = self.in_flight.lock().expect("in-flight set").get(&op) {
            token.cancel();
        }
    }

    /// Begins an operation on a subject rather than a tenant lifecycle (see
    /// `Catalog::begin_subject_operation`): `Err(id)` names the one of its
    /// kind already running on that subject.
    pub async fn begin_subject(
        &self,
        kind: OpKind,
        subject: Uuid,
        tenant: Option<TenantId>,
        params: serde_json::Value,
    ) -> Result<Result<Lease, Uuid>, CatalogError> {
        let this = self.clone();
        detached(async move {
            let owner = this.owner()?;
            Ok(this
                .catalog
                .begin_subject_operation(kind, subject, tenant, params, owner)
                .await?
                .map(|fence| this.track(fence, owner)))
        })
        .await
    }

    fn track(&self, fence: Fence, owner: Owner) -> Lease {
        let cancel_requested = CancellationToken::new();
        self.in_flight
            .lock()
            .expect("in-flight set")
            .insert(fence.op, cancel_requested.clone());
        let cancel = CancellationToken::new();
        let beat = tokio::spawn(beat(
            Beat {
                catalog: self.catalog.clone(),
                fence,
                owner,
                timing: self.timing,
            },
            self.instance.watch(),
            cancel.clone(),
            cancel_requested.clone(),
        ));
        Lease::new(
            fence,
            cancel,
            cancel_requested,
            self.catalog.clone(),
            self.in_flight.clone(),
            beat.abort_handle(),
        )
    }
}

/// Keeps the operation's row fresh, and cancels it when its owner can no
/// longer be sure it owns it (see the module's description).
struct Beat {
    catalog: Catalog,
    fence: Fence,
    owner: Owner,
    timing: Timing,
}

async fn beat(
    Beat {
        catalog,
        fence,
        owner,
        timing,
    }: Beat,
    mut lease: tokio::sync::watch::Receiver<Option<Owner>>,
    cancel: CancellationToken,
    cancel_requested: CancellationToken,
) {
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = lease.changed() => {
                if changed.is_err() || *lease.borrow() != Some(owner) {
                    tracing::warn!(op = %fence.op, "abandoning an operation: this process's lease ended");
                    cancel.cancel();
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep(timing.beat) => {}
        }
        match tokio::time::timeout(timing.beat, catalog.heartbeat_operation(fence)).await {
            Ok(Ok(Some(asked))) => {
                last_ok = tokio::time::Instant::now();
                if asked {
                    cancel_requested.cancel();
                }
            }
            Ok(Ok(None)) => {
                tracing::warn!(op = %fence.op, "abandoning an operation: another process claimed it");
                cancel.cancel();
                return;
            }
            _ if last_ok.elapsed() >= timing.deadline => {
                tracing::warn!(op = %fence.op, "abandoning an operation: no heartbeat got through before the deadline");
                cancel.cancel();
                return;
            }
            _ => {}
        }
    }
}

/// Runs a begin (which writes an operation row under this process as its
/// owner) to its end even when its caller stops waiting, as a cancelled
/// request or an aborted fleet worker does: otherwise the row would stay
/// `running` under a live owner, and nobody would take it over until it
/// looked stale. A lease nobody takes is dropped here, which releases it
/// for any reconciler at once.
async fn detached<T: Send + 'static>(
    begin: impl std::future::Future<Output = Result<T, CatalogError>> + Send + 'static,
) -> Result<T, CatalogError> {
    let (answer, taken) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        // An answer nobody waits for is dropped, lease and all.
        let _ = answer.send(begin.await);
    });
    taken.await.expect("a begin runs to its end")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_gives_up_before_anyone_may_take_over_for_want_of_beats() {
        for secs in [3, 10, 60, 600] {
            let t = Timing::from_stale_after(Duration::from_secs(secs));
            assert!(t.beat < t.deadline, "{t:?}");
            assert!(t.deadline < t.stale_after, "{t:?}");
            // Two beats can fail and the owner still holds on.
            assert!(t.beat * 2 < t.deadline, "{t:?}");
        }
    }
}
