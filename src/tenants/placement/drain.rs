//! Draining a server: every root tenant on it moved off, one move at a
//! time, as one `drain` operation on the server. The drain is idempotent
//! (it moves whatever is still there), so a drain whose process stopped is
//! simply run again by whoever takes it over; a cancel stops it between
//! two moves.
//!
//! A drain succeeds only when a fresh listing of the server's tenants,
//! read while the server is `draining`, comes back empty. The server is
//! marked before the first listing, and every placement (create, restore
//! as new, a move's switch) re-checks in its own transaction, under a share
//! lock on the server's row, that its server is still `active`. So a
//! placement either committed before the mark (and the listing shows it)
//! or is refused; a drain lists and moves again until nothing is left.
//! Each listing and the state it is judged by are read in one transaction
//! under the server row's update lock (`Catalog::drain_listing`), so an
//! operator cannot put the server back in service between the two.
//!
//! A tenant another operation holds is retried on the next pass, for a
//! while. So is a tenant whose move was refused because its target began
//! draining during the copy (another drain): the next pass picks another
//! active server, and fails the drain with `no_server_available` when none
//! is left. A server put back in service mid-drain ends the drain as failed.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::{PlacementError, Started};
use crate::catalog::{Ending, OpKind, Operation, ServerPatch, ServerState};
use crate::domain::TenantId;
use crate::error_code::ErrorCode;
use crate::operations::Lease;
use crate::tenants::Tenants;

/// One tenant of a drain, and how its move ended.
#[derive(Debug, Clone, Serialize)]
pub struct DrainItem {
    pub tenant_id: TenantId,
    pub slug: String,
    pub to: Option<String>,
    pub error: Option<String>,
}

/// How long a drain waits, in all, for tenants another operation holds.
const BUSY_WAIT: Duration = Duration::from_secs(120);
/// The pause between two passes over tenants that were busy.
const BUSY_PAUSE: Duration = Duration::from_secs(1);
/// How many moves of one drain may be refused by a target that stopped
/// taking tenants during the copy before the drain gives up: each refusal
/// means the fleet changed under it, and each retry costs a whole copy.
const REFUSED_MOVES: usize = 5;

/// Called after each tenant: (done, total).
pub type DrainProgress = Arc<dyn Fn(usize, usize) + Send + Sync>;

impl Tenants {
    /// Marks `server` draining (nothing new lands there) and begins its
    /// drain; a drain of it already running is returned instead, with no
    /// new work.
    pub async fn start_drain(
        &self,
        server: Uuid,
        progress: DrainProgress,
    ) -> Result<Started<Vec<DrainItem>>, PlacementError> {
        let patch = ServerPatch {
            state: Some(ServerState::Draining),
            ..Default::default()
        };
        self.catalog
            .update_server(server, &patch)
            .await?
            .ok_or(PlacementError::ServerNotFound)?;
        let lease = match self
            .ops
            .begin_subject(OpKind::Drain, server, None, serde_json::json!({}))
            .await?
        {
            Ok(lease) => lease,
            Err(running) => return Ok(Started::already(running)),
        };
        let tenants = self.clone();
        let op = lease.op();
        let run = async move {
            lease
                .guard(tenants.run_drain(server, 0, &lease, progress))
                .await
        };
        Ok(Started::new(op, run))
    }

    /// Drains `server` and answers when it is done (the CLI).
    pub async fn drain_server(
        &self,
        server: Uuid,
        progress: DrainProgress,
    ) -> Result<Vec<DrainItem>, PlacementError> {
        match self.start_drain(server, progress).await?.run {
            Some(run) => run.await,
            None => Err(PlacementError::Busy),
        }
    }

    /// Goes on with a drain another process left.
    pub async fn resume_drain(&self, op: &Operation, lease: &Lease) -> Result<(), PlacementError> {
        let server = op
            .subject()
            .ok_or(PlacementError::Inconsistent("a drain without its server"))?;
        let done_before = op.progress_done.unwrap_or(0).max(0) as usize;
        tracing::info!(op = %op.id, server.id = %server, "resuming a drain another process left");
        lease
            .guard(self.run_drain(server, done_before, lease, Arc::new(|_, _| {})))
            .await
            .map(|_| ())
    }

    /// Moves tenants off `server`, pass after pass, until a fresh listing
    /// is empty. Each listing is read while the server is draining, and
    /// placement refuses a draining server in the transaction that writes
    /// a placement: so a tenant placed before the mark is in the listing,
    /// and none can be placed after it. An empty listing is then final.
    async fn run_drain(
        &self,
        server: Uuid,
        done_before: usize,
        lease: &Lease,
        progress: DrainProgress,
    ) -> Result<Vec<DrainItem>, PlacementError> {
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let mut items: Vec<DrainItem> = Vec::new();
        let mut waited = Duration::ZERO;
        let mut refused = 0;
        loop {
            // The state and the listing in one transaction, under the
            // server row's update lock: no placement and no change of state
            // falls between them.
            let (state, listed) = self
                .catalog
                .drain_listing(server)
                .await?
                .ok_or(PlacementError::ServerNotFound)?;
            if state != ServerState::Draining {
                // Someone put it back in service: new tenants may land on it
                // again, so no listing could prove it empty.
                lease
                    .end(
                        Ending::Failed,
                        Some(ErrorCode::DrainIncomplete),
                        Some("the server stopped draining (its state was changed) before it was empty"),
                    )
                    .await?;
                return Ok(items);
            }
            let done = done_before + items.len();
            let total = done + listed.len();
            lease
                .progress(Some(as_i64(done)), Some(as_i64(total)), None)
                .await;
            if listed.is_empty() {
                lease.end(Ending::Succeeded, None, None).await?;
                return Ok(items);
            }
            let mut busy = None;
            let count = listed.len();
            for (i, record) in listed.into_iter().enumerate() {
                if lease.check_cancel().await {
                    let left = count - i;
                    lease
                        .end(
                            Ending::Cancelled,
                            Some(ErrorCode::Cancelled),
                            Some(&format!(
                                "cancelled with {left} tenants still on the server"
                            )),
                        )
                        .await?;
                    return Ok(items);
                }
                let outcome = match self.catalog.pick_server(record.tier).await? {
                    None => Err(PlacementError::NoServer),
                    Some(to) => self.move_tenant(record.id, to.id).await.map(|_| to.name),
                };
                match outcome {
                    Err(PlacementError::Abandoned(a)) => return Err(PlacementError::Abandoned(a)),
                    // Another operation holds it (a create still running, a
                    // backup): the next pass tries it again.
                    Err(PlacementError::Busy) => {
                        busy = Some(record);
                        continue;
                    }
                    // Its target began draining during the copy (another
                    // drain); the move was undone, the tenant is still here.
                    // The next pass picks among the servers still active.
                    Err(PlacementError::ServerNotActive) if refused < REFUSED_MOVES => {
                        refused += 1;
                        tracing::info!(tenant.id = %record.id, "the drain's target stopped taking tenants; picking another on the next pass");
                        continue;
                    }
                    outcome => items.push(DrainItem {
                        tenant_id: record.id,
                        slug: record.slug.to_string(),
                        to: outcome.as_ref().ok().cloned(),
                        error: outcome.err().map(|e| e.to_string()),
                    }),
                }
                let done = done_before + items.len();
                lease.progress(Some(as_i64(done)), None, None).await;
                progress(done, total);
                crate::failpoint!("drain.between_moves");
            }
            if let Some(record) = busy {
                if waited >= BUSY_WAIT {
                    items.push(DrainItem {
                        tenant_id: record.id,
                        slug: record.slug.to_string(),
                        to: None,
                        error: Some(PlacementError::Busy.to_string()),
                    });
                } else {
                    tokio::time::sleep(BUSY_PAUSE).await;
                    waited += BUSY_PAUSE;
                }
            }
            let failed: Vec<&DrainItem> = items.iter().filter(|i| i.error.is_some()).collect();
            if let Some(first) = failed.first() {
                let first = first.error.as_deref().unwrap_or_default();
                let message = format!(
                    "{} of {} tenants could not be moved (first: {first})",
                    failed.len(),
                    items.len()
                );
                // No active server could take them: say so, rather than
                // that the drain merely did not finish.
                let no_server = PlacementError::NoServer.to_string();
                let code = if failed
                    .iter()
                    .all(|i| i.error.as_deref() == Some(&no_server))
                {
                    ErrorCode::NoServerAvailable
                } else {
                    ErrorCode::DrainIncomplete
                };
                lease
                    .end(Ending::Failed, Some(code), Some(&message))
                    .await?;
                return Ok(items);
            }
        }
    }
}
