//! A running operation this process owns: its fence, its heartbeat, and
//! the ways it ends (finished, failed, cancelled, discarded or released).
//!
//! Rules:
//! - Every destructive step (dropping a database or role, the placement
//!   switch, resuming writes, a restore's renames) re-reads what it assumes
//!   from the catalog under the operation's step lock (`hold`), right before
//!   it acts; a claim must take that lock too.
//! - A lease dropped before its operation ended (work dropped half-way, a
//!   cancelled request) releases the operation, so any process's reconciler
//!   takes it over without waiting for it to look stale.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Abandoned;
use crate::catalog::{
    Catalog, CatalogError, Ending, Failure, Fence, FenceGuard, TenantChange, TenantRecord,
};
use crate::domain::TenantId;
use crate::error_code::ErrorCode;

/// A running operation this process owns. Dropping it stops its heartbeat
/// and forgets it here; an unfinished one is left for a peer (or this
/// process's reconciler) to take over.
pub struct Lease {
    fence: Fence,
    cancel: CancellationToken,
    /// Cancelled when someone asked the operation to stop (see `Catalog::request_cancel`).
    cancel_requested: CancellationToken,
    catalog: Catalog,
    in_flight: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
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
    pub(super) fn new(
        fence: Fence,
        cancel: CancellationToken,
        cancel_requested: CancellationToken,
        catalog: Catalog,
        in_flight: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
        beat: tokio::task::AbortHandle,
    ) -> Self {
        Self {
            fence,
            cancel,
            cancel_requested,
            catalog,
            in_flight,
            beat,
            settled: AtomicBool::new(false),
        }
    }

    /// Whether someone asked this operation to stop; work that can stop
    /// safely checks it between its steps.
    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested.is_cancelled()
    }

    /// Whether someone asked this operation to stop, read from the catalog
    /// (a request another replica took is seen here at once, not on the
    /// next beat). Work that stops at safe points asks before each step.
    pub async fn check_cancel(&self) -> bool {
        if self.cancel_requested() {
            return true;
        }
        match self.catalog.get_operation(self.fence.op).await {
            Ok(Some(op)) if op.cancel_requested => {
                self.cancel_requested.cancel();
                true
            }
            _ => false,
        }
    }

    /// Runs `work` to its end while asking the catalog every `poll` whether
    /// another process asked this operation to stop: `check_cancel` then
    /// cancels `cancel_token`, which `work` obeys, stopping where it stands.
    pub async fn watching_cancel<T>(
        &self,
        poll: std::time::Duration,
        work: impl Future<Output = T>,
    ) -> T {
        let watch = async {
            while !self.check_cancel().await {
                tokio::time::sleep(poll).await;
            }
            std::future::pending::<std::convert::Infallible>().await
        };
        tokio::select! {
            done = work => done,
            never = watch => match never {},
        }
    }

    /// A token cancelled once someone asks this operation to stop, for
    /// work spread over tasks.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel_requested.clone()
    }

    /// Resolves once someone asks this operation to stop.
    pub async fn cancelled(&self) {
        self.cancel_requested.cancelled().await
    }

    /// Records progress (see `Catalog::record_progress`); a failed write is
    /// only logged, since progress is advisory.
    pub async fn progress(&self, done: Option<i64>, total: Option<i64>, bytes: Option<i64>) {
        if let Err(e) = self
            .catalog
            .record_progress(self.fence, done, total, bytes)
            .await
        {
            tracing::debug!(op = %self.fence.op, error = %e, "could not record progress");
        }
    }

    /// Ends an operation that changes no tenant row (a drain, a fleet run,
    /// a backup) as `ending`, with a code and message when it did not succeed
    /// (the code the API answers with for the same failure).
    pub async fn end(
        &self,
        ending: Ending,
        code: Option<ErrorCode>,
        error: Option<&str>,
    ) -> Result<(), CatalogError> {
        let done = self
            .catalog
            .end_operation(self.fence, ending, code, error)
            .await;
        self.settle_if(done.is_ok());
        done
    }

    pub fn fence(&self) -> Fence {
        self.fence
    }

    pub fn op(&self) -> Uuid {
        self.fence.op
    }

    /// `work` as this operation's work, to be spawned: it runs under the
    /// lease (`guard`), which it is lent, and the lease ends with it.
    pub fn start<T, E, F>(self, work: F) -> super::Started<T, E>
    where
        F: for<'a> FnOnce(&'a Lease) -> futures_util::future::BoxFuture<'a, Result<T, E>>
            + Send
            + 'static,
        T: 'static,
        E: From<Abandoned> + 'static,
    {
        let op = self.op();
        super::Started::new(op, async move { self.guard(work(&self)).await })
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

    /// Finishes the operation, succeeded or with `failure`, and applies
    /// `change` (fenced).
    pub async fn finish(
        &self,
        tenant: TenantId,
        failure: Option<Failure<'_>>,
        change: &TenantChange,
    ) -> Result<Option<TenantRecord>, CatalogError> {
        let done = self
            .catalog
            .finish_operation(self.fence, tenant, failure, change)
            .await;
        self.settle_if(done.is_ok());
        done
    }

    /// Ends the operation by `end`: a fenced write of the caller's that
    /// finishes the operation's row together with rows of its own (a fleet
    /// item and its tenant's `migrate`, for one). Settled when it succeeds.
    pub async fn end_by<T>(
        &self,
        end: impl Future<Output = Result<T, CatalogError>>,
    ) -> Result<T, CatalogError> {
        let done = end.await;
        self.settle_if(done.is_ok());
        done
    }

    fn settle_if(&self, done: bool) {
        if done {
            self.settled.store(true, Ordering::Release);
        }
    }

    /// Finishes the operation as failed, leaving its tenant as it is: `code`
    /// is the API's code for the failure (`TenantsError::code`), recorded
    /// with the `failed` state in one write.
    pub async fn fail(
        &self,
        tenant: TenantId,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), CatalogError> {
        let failure = Failure { code, message };
        let done = self
            .catalog
            .fail_operation(self.fence, tenant, failure)
            .await;
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
