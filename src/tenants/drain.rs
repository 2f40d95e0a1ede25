//! Draining a server: every root tenant on it moved off, one move at a
//! time, as one `drain` operation on the server. The drain is idempotent
//! (it moves whatever is still there), so a drain whose process stopped is
//! simply run again by whoever takes it over; a cancel stops it between
//! two moves.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::{Started, Tenants, TenantsError};
use crate::catalog::{Ending, OpKind, Operation, ServerPatch, ServerState};
use crate::domain::TenantId;
use crate::operations::Lease;

/// One tenant of a drain, and how its move ended.
#[derive(Debug, Clone, Serialize)]
pub struct DrainItem {
    pub tenant_id: TenantId,
    pub slug: String,
    pub to: Option<String>,
    pub error: Option<String>,
}

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
    ) -> Result<Started<Vec<DrainItem>>, TenantsError> {
        let patch = ServerPatch {
            state: Some(ServerState::Draining),
            ..Default::default()
        };
        self.catalog
            .update_server(server, &patch)
            .await?
            .ok_or(TenantsError::ServerNotFound)?;
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
    ) -> Result<Vec<DrainItem>, TenantsError> {
        match self.start_drain(server, progress).await?.run {
            Some(run) => run.await,
            None => Err(TenantsError::Busy),
        }
    }

    /// Goes on with a drain another process left.
    pub async fn resume_drain(&self, op: &Operation, lease: &Lease) -> Result<(), TenantsError> {
        let server = op
            .params
            .get("subject")
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse::<Uuid>().ok())
            .ok_or(TenantsError::Inconsistent("a drain without its server"))?;
        let done_before = op.progress_done.unwrap_or(0).max(0) as usize;
        tracing::info!(op = %op.id, server.id = %server, "resuming a drain another process left");
        lease
            .guard(self.run_drain(server, done_before, lease, Arc::new(|_, _| {})))
            .await
            .map(|_| ())
    }

    async fn run_drain(
        &self,
        server: Uuid,
        done_before: usize,
        lease: &Lease,
        progress: DrainProgress,
    ) -> Result<Vec<DrainItem>, TenantsError> {
        let tenants = self.catalog.root_tenants_on(server).await?;
        let total = done_before + tenants.len();
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        lease
            .progress(Some(as_i64(done_before)), Some(as_i64(total)), None)
            .await;
        let mut items = Vec::with_capacity(tenants.len());
        for record in tenants {
            if lease.check_cancel().await {
                let left = total - done_before - items.len();
                lease
                    .end(
                        Ending::Cancelled,
                        Some("cancelled"),
                        Some(&format!(
                            "cancelled with {left} tenants still on the server"
                        )),
                    )
                    .await?;
                return Ok(items);
            }
            let outcome = match self.catalog.pick_server(record.tier).await? {
                None => Err(TenantsError::NoServer),
                Some(to) => self.move_tenant(record.id, to.id).await.map(|_| to.name),
            };
            if let Err(TenantsError::Abandoned(a)) = outcome {
                return Err(TenantsError::Abandoned(a));
            }
            items.push(DrainItem {
                tenant_id: record.id,
                slug: record.slug.clone(),
                to: outcome.as_ref().ok().cloned(),
                error: outcome.err().map(|e| e.to_string()),
            });
            let done = done_before + items.len();
            lease.progress(Some(as_i64(done)), None, None).await;
            progress(done, total);
            crate::failpoint!("drain.between_moves");
        }
        let failed: Vec<&DrainItem> = items.iter().filter(|i| i.error.is_some()).collect();
        if failed.is_empty() {
            lease.end(Ending::Succeeded, None, None).await?;
        } else {
            let first = failed[0].error.as_deref().unwrap_or_default();
            let message = format!(
                "{} of {} tenants could not be moved (first: {first})",
                failed.len(),
                items.len()
            );
            lease
                .end(Ending::Failed, Some("drain_incomplete"), Some(&message))
                .await?;
        }
        Ok(items)
    }
}
