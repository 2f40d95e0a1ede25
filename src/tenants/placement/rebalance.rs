//! Rebalancing the fleet: the plan (`plan.rs`) for the servers' measured
//! loads, and its moves run as one `rebalance` operation, a bounded number
//! at a time.
//!
//! Rules:
//! - The plan is kept in the operation when it begins, and a resumed
//!   rebalance runs that plan, not a new one: what was shown is what runs.
//! - Each move checks, under its tenant's lock, where the tenant is (the
//!   move's own checks); a tenant no longer on the server the plan moves it
//!   from (moved meanwhile, or already at its target) is left where it is,
//!   and said so.
//! - One rebalance at a time across the fleet (subject: the nil id).

use std::sync::Arc;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::plan::{plan, PlanServer, PlannedMove, RebalancePlan};
use super::{PlacementError, Started};
use crate::catalog::{Ending, OpKind, Operation};
use crate::domain::TenantId;
use crate::error_code::ErrorCode;
use crate::operations::Lease;
use crate::tenants::Tenants;

/// How one planned move ended.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RebalanceItem {
    pub tenant_id: TenantId,
    pub slug: String,
    pub to: String,
    /// `moved`, `skipped` (the tenant was not where the plan left it) or `failed`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Called after each move: (done, total).
pub type RebalanceProgress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// At most this many moves at once, whatever is asked.
pub const MAX_PARALLEL: usize = 8;

impl Tenants {
    /// The plan that brings every server under `target` (0 to 1), from the
    /// loads the last usage sample measured.
    pub async fn rebalance_plan(&self, target: f64) -> Result<RebalancePlan, PlacementError> {
        let loads = self.catalog.server_loads().await?;
        let servers = self.catalog.list_servers().await?;
        let planned: Vec<PlanServer> = loads
            .into_iter()
            .map(|load| PlanServer {
                pinned_tiers: servers
                    .iter()
                    .find(|s| s.id == load.server_id)
                    .map(|s| s.pinned_tiers.clone())
                    .unwrap_or_default(),
                load,
            })
            .collect();
        let tenants = self.catalog.plan_tenants().await?;
        Ok(plan(&planned, &tenants, target))
    }

    /// Plans, then begins running the plan's moves, `parallel` at a time
    /// (1 to `MAX_PARALLEL`); the rebalance already running is returned
    /// instead, with no new work.
    pub async fn start_rebalance(
        &self,
        target: f64,
        parallel: usize,
        progress: RebalanceProgress,
    ) -> Result<Started<Vec<RebalanceItem>>, PlacementError> {
        let plan = self.rebalance_plan(target).await?;
        let parallel = parallel.clamp(1, MAX_PARALLEL);
        let params = serde_json::json!({
            "target": target,
            "parallel": parallel,
            "moves": plan.moves,
        });
        let lease = match self
            .ops
            .begin_subject(OpKind::Rebalance, Uuid::nil(), None, params)
            .await?
        {
            Ok(lease) => lease,
            Err(running) => return Ok(Started::already(running)),
        };
        let tenants = self.clone();
        let op = lease.op();
        let run = async move {
            lease
                .guard(tenants.run_rebalance(plan.moves, parallel, &lease, progress))
                .await
        };
        Ok(Started::new(op, run))
    }

    /// Goes on with a rebalance another process left: the same plan.
    pub async fn resume_rebalance(
        &self,
        op: &Operation,
        lease: &Lease,
    ) -> Result<(), PlacementError> {
        let moves: Vec<PlannedMove> = op
            .params
            .get("moves")
            .cloned()
            .and_then(|m| serde_json::from_value(m).ok())
            .ok_or(PlacementError::Inconsistent("a rebalance without its plan"))?;
        let parallel = op
            .params
            .get("parallel")
            .and_then(|p| p.as_u64())
            .unwrap_or(1) as usize;
        tracing::info!(op = %op.id, moves = moves.len(), "resuming a rebalance another process left");
        lease
            .guard(self.run_rebalance(moves, parallel, lease, Arc::new(|_, _| {})))
            .await
            .map(|_| ())
    }

    async fn run_rebalance(
        &self,
        moves: Vec<PlannedMove>,
        parallel: usize,
        lease: &Lease,
        progress: RebalanceProgress,
    ) -> Result<Vec<RebalanceItem>, PlacementError> {
        let total = moves.len();
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        lease.progress(Some(0), Some(as_i64(total)), None).await;
        let mut items = Vec::with_capacity(total);
        let mut runs = futures_util::stream::iter(moves)
            .map(|m| async move {
                let item = self.one_move(&m).await;
                (m, item)
            })
            .buffer_unordered(parallel.clamp(1, MAX_PARALLEL));
        while let Some((_, item)) = runs.next().await {
            if let Some(PlacementError::Abandoned(a)) = item.1 {
                return Err(PlacementError::Abandoned(a));
            }
            items.push(item.0);
            lease
                .progress(Some(as_i64(items.len())), Some(as_i64(total)), None)
                .await;
            progress(items.len(), total);
            if lease.check_cancel().await {
                drop(runs);
                lease
                    .end(
                        Ending::Cancelled,
                        Some(ErrorCode::Cancelled),
                        Some(&format!("cancelled after {} of {total} moves", items.len())),
                    )
                    .await?;
                return Ok(items);
            }
        }
        let failed = items.iter().filter(|i| i.outcome == "failed").count();
        if failed == 0 {
            lease.end(Ending::Succeeded, None, None).await?;
        } else {
            let message = format!("{failed} of {total} moves failed; the others were made");
            lease
                .end(Ending::Failed, Some(ErrorCode::MoveFailed), Some(&message))
                .await?;
        }
        Ok(items)
    }

    /// One planned move: skipped when the tenant is not where the plan
    /// found it; else the move, with its own checks under the lock.
    async fn one_move(&self, m: &PlannedMove) -> (RebalanceItem, Option<PlacementError>) {
        let item = |outcome: &str, detail: Option<String>| RebalanceItem {
            tenant_id: m.tenant_id,
            slug: m.slug.clone(),
            to: m.to_name.clone(),
            outcome: outcome.into(),
            detail,
        };
        match self.catalog.get_tenant(m.tenant_id).await {
            Ok(Some(t)) if t.db_server_id == Some(m.from) => {}
            Ok(Some(t)) if t.db_server_id == Some(m.to) => {
                return (item("skipped", Some("already on its target".into())), None)
            }
            Ok(_) => {
                return (
                    item(
                        "skipped",
                        Some("no longer on the server the plan moves it from".into()),
                    ),
                    None,
                )
            }
            Err(e) => return (item("failed", Some(e.to_string())), None),
        }
        match self.move_tenant(m.tenant_id, m.to).await {
            Ok(_) => (item("moved", None), None),
            Err(PlacementError::Abandoned(a)) => (
                item("failed", Some("abandoned".into())),
                Some(PlacementError::Abandoned(a)),
            ),
            Err(e) => (item("failed", Some(e.to_string())), None),
        }
    }
}
