//! A session slot, then the tenant's operation lock: how a fleet run's or
//! a revert's worker gets ready to open one tenant's session.
//!
//! Rules:
//! - The slot comes first, so a tenant is locked only when its session
//!   can open: a process killed mid-run leaves at most `concurrency`
//!   operations to take over, and a resumed run does not wait on more.
//!   (Locking first took the begin's durable commit off the slot, about
//!   3 ms a tenant, but left up to twice as many operations behind a
//!   kill.)
//! - A worker that gets its slot after the run was told to stop begins
//!   nothing and hands its item back.
//! - A tenant busy with another operation is waited for without a slot,
//!   for at most `BUSY_WAIT`.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::halt::Stop;
use crate::catalog::{CatalogError, OpKind, TenantRecord};
use crate::domain::TenantId;
use crate::operations::{Lease, Operations};

/// How long a fleet worker waits for a tenant busy with another operation.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(10);
pub(super) const BUSY_RETRY: Duration = Duration::from_millis(200);

/// A tenant locked by its `migrate` operation, with a session slot.
pub(super) struct Ready<'a> {
    pub(super) permit: SemaphorePermit<'a>,
    pub(super) record: TenantRecord,
    pub(super) lease: Lease,
}

/// Why a tenant was not made ready.
pub(super) enum NotReady {
    /// The run was told to stop first: nothing was begun or left begun.
    Withdrawn,
    /// Still busy with another operation after `BUSY_WAIT`.
    Busy,
    Catalog(CatalogError),
}

/// What a worker needs to get a tenant ready.
pub(super) struct Slots<'a> {
    pub(super) ops: &'a Operations,
    pub(super) sessions: &'a Semaphore,
    /// Set when the run must stop (a cancel stops it too).
    pub(super) stop: &'a Stop,
}

impl<'a> Slots<'a> {
    /// Waits for a session slot, then begins `tenant`'s `migrate`
    /// operation with `params`.
    pub(super) async fn ready(
        &self,
        tenant: TenantId,
        params: &serde_json::Value,
    ) -> Result<Ready<'a>, NotReady> {
        let mut waited = Duration::ZERO;
        loop {
            let permit = tokio::select! {
                permit = self.sessions.acquire() => permit.ok(),
                _ = self.stop.cancel_token().cancelled() => None,
            };
            let Some(permit) = permit.filter(|_| !self.stop.stopping()) else {
                return Err(NotReady::Withdrawn);
            };
            match self.ops.begin(tenant, OpKind::Migrate, params).await {
                Ok((record, lease)) => {
                    return Ok(Ready {
                        permit,
                        record,
                        lease,
                    })
                }
                Err(CatalogError::TenantBusy) if waited < BUSY_WAIT => {
                    // Waited for without a slot.
                    drop(permit);
                    tokio::time::sleep(BUSY_RETRY).await;
                    waited += BUSY_RETRY;
                }
                Err(CatalogError::TenantBusy) => return Err(NotReady::Busy),
                Err(e) => return Err(NotReady::Catalog(e)),
            }
        }
    }
}
