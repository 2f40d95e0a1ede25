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

mod instance;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use instance::Instance;

use crate::catalog::{
    Catalog, CatalogError, Fence, FenceGuard, NewTenant, OpKind, Operation, Owner, TenantChange,
    TenantRecord,
};
use crate::domain::TenantId;

/// The operation's work stopped because this process no longer owns it.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("this process lost its claim on the operation; another one finishes it")]
pub struct Abandoned;

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
    in_flight: Arc<Mutex<HashSet<Uuid>>>,
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
        let owner = self.owner()?;
        let (record, fence) = self
            .catalog
            .begin_operation(Uuid::now_v7(), tenant, kind, params, owner)
            .await?;
        Ok((record, self.track(fence, owner)))
    }

    /// Inserts a tenant with its first operation (see `Catalog::insert_tenant`).
    pub async fn begin_with_tenant(
        &self,
        new: &NewTenant,
        kind: OpKind,
    ) -> Result<(TenantRecord, Lease), CatalogError> {
        let owner = self.owner()?;
        let (record, fence) = self
            .catalog
            .insert_tenant(new, Uuid::now_v7(), kind, false, owner)
            .await?;
        Ok((record, self.track(fence, owner)))
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
        self.in_flight.lock().expect("in-flight set").contains(&op)
    }

    fn track(&self, fence: Fence, owner: Owner) -> Lease {
        self.in_flight
            .lock()
            .expect("in-flight set")
            .insert(fence.op);
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
        ));
        Lease {
            fence,
            cancel,
            catalog: self.catalog.clone(),
            in_flight: self.in_flight.clone(),
            beat: beat.abort_handle(),
            settled: AtomicBool::new(false),
        }
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
            Ok(Ok(true)) => last_ok = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
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

/// A running operation this process owns. Dropping it stops its heartbeat
/// and forgets it here; an unfinished one is left for a peer (or this
/// process's reconciler) to take over.
pub struct Lease {
    fence: Fence,
    cancel: CancellationToken,
    catalog: Catalog,
    in_flight: Arc<Mutex<HashSet<Uuid>>>,
    beat: tokio::task::AbortHandle,
    /// Set once the operation was finished, discarded or released here.
    settled: AtomicBool,
}

/// A destructive step's hold on its operation (see `Lease::hold`).
pub struct Held {
    guard: FenceGuard,
}

impl Held {
    /// The tenant row as the catalog has it now, read under the hold.
    pub async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, CatalogError> {
        self.guard.tenant(id).await
    }

    /// Ends the hold: the step is done.
    pub async fn release(mut self) {
        self.guard.release().await;
    }
}

impl Lease {
    pub fn fence(&self) -> Fence {
        self.fence
    }

    pub fn op(&self) -> Uuid {
        self.fence.op
    }

    /// Runs `work` until it ends, or until this process stops owning the
    /// operation: then `work` is dropped where it stands.
    pub async fn guard<T, E>(&self, work: impl Future<Output = Result<T, E>>) -> Result<T, E>
    where
        E: From<Abandoned>,
    {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Abandoned.into()),
            result = work => result,
        }
    }

    /// Whether the operation was abandoned.
    pub fn abandoned(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Holds the operation's row lock for a destructive step: see
    /// `Catalog::hold`. Refused once abandoned.
    pub async fn hold(&self) -> Result<Held, CatalogError> {
        if self.abandoned() {
            return Err(CatalogError::Fenced);
        }
        Ok(Held {
            guard: self.catalog.hold(self.fence).await?,
        })
    }

    /// Records how far the operation got (fenced).
    pub async fn step(
        &self,
        step: &str,
        params: Option<&serde_json::Value>,
    ) -> Result<(), CatalogError> {
        self.catalog.record_step(self.fence, step, params).await
    }

    /// Finishes the operation and applies `change` (fenced).
    pub async fn finish(
        &self,
        tenant: TenantId,
        succeeded: bool,
        error: Option<&str>,
        change: &TenantChange,
    ) -> Result<Option<TenantRecord>, CatalogError> {
        let done = self
            .catalog
            .finish_operation(self.fence, tenant, succeeded, error, change)
            .await;
        self.settle_if(done.is_ok());
        done
    }

    fn settle_if(&self, done: bool) {
        if done {
            self.settled.store(true, Ordering::Release);
        }
    }

    /// Finishes the operation as failed, leaving its tenant as it is.
    pub async fn fail(&self, tenant: TenantId, error: &str) -> Result<(), CatalogError> {
        let done = self.catalog.fail_operation(self.fence, tenant, error).await;
        self.settle_if(done.is_ok());
        done
    }

    /// Removes the operation: it had nothing to do (before any side effect).
    pub async fn discard(&self) -> Result<(), CatalogError> {
        let done = self.catalog.discard_operation(self.fence).await;
        self.settle_if(done.is_ok());
        done
    }

    /// Leaves the operation unfinished for any reconciler to take over now.
    pub async fn release(&self, why: &str) {
        match self.catalog.release_operation(self.fence, why).await {
            Ok(()) => self.settle_if(true),
            Err(e) => {
                tracing::warn!(op = %self.fence.op, error = %e, "could not release an operation; it is taken over once it looks stale")
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.beat.abort();
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(&self.fence.op);
        }
        // Work dropped half-way (a cancelled request, a killed task) leaves
        // its operation unfinished: released, any reconciler takes it over
        // now rather than once it looks stale.
        if !self.settled.load(Ordering::Acquire) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (catalog, fence) = (self.catalog.clone(), self.fence);
                runtime.spawn(async move {
                    let _ = catalog
                        .release_operation(fence, "its work stopped before it finished")
                        .await;
                });
            }
        }
    }
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
