//! `Placement`: where a root tenant's database lives. A move copies it to
//! another server; a drain moves every tenant off one.
//!
//! Router notices: a moved tenant's route and sessions go once its move
//! ended, whichever way (a failed move resumed its writes); a drain makes
//! every route stale as it marks the server, and each tenant it moved
//! loses its sessions when the drain ends.

use uuid::Uuid;

use super::{launch, Launched};
use crate::control_audit::Actor;
use crate::domain::TenantId;
use crate::route_notices::RouteChange;
use crate::tenants::placement::plan::RebalancePlan;
use crate::tenants::{
    DrainItem, DrainProgress, PlacementError, RebalanceItem, RebalanceProgress, TenantView, Tenants,
};

/// The placement commands.
#[derive(Clone)]
pub struct Placement {
    tenants: Tenants,
}

impl Placement {
    pub fn new(tenants: Tenants) -> Self {
        Self { tenants }
    }

    /// Begins moving root tenant `id` to server `target`, once the tenant
    /// and the servers are checked under the tenant's lock.
    pub async fn move_tenant(
        &self,
        actor: &Actor,
        id: TenantId,
        target: Uuid,
    ) -> Result<Launched<TenantView, PlacementError>, PlacementError> {
        let t = &self.tenants;
        let change = t.start_move(id, target);
        t.launch_tenant_change(actor, (id, "tenants.move", "move"), change)
            .await
    }

    /// Marks `server` draining and begins its drain (or answers with the
    /// drain of it already running); `progress` hears (done, total).
    pub async fn drain(
        &self,
        actor: &Actor,
        server: Uuid,
        progress: DrainProgress,
    ) -> Result<Launched<Vec<DrainItem>, PlacementError>, PlacementError> {
        let t = &self.tenants;
        let resource = format!("servers/{server}");
        let what = (None, "servers.drain", resource.as_str());
        let change = t.start_drain(server, progress);
        let started = t.audited(actor, what, change, |_| None).await?;
        t.routes.tell(RouteChange::All).await;
        let routes = t.routes.clone();
        Ok(launch(started, move |run| async move {
            let result = run.await;
            match &result {
                Ok(items) => {
                    for item in items {
                        routes.tenant_changed(item.tenant_id, true).await;
                    }
                    let failed = items.iter().filter(|i| i.error.is_some()).count();
                    tracing::info!(server.id = %server, moved = items.len() - failed, failed, "drain ended");
                }
                Err(e) => tracing::error!(server.id = %server, error = %e, "drain failed"),
            }
            result
        }))
    }

    /// The plan that brings every server under `target`, as it would run now.
    pub async fn rebalance_plan(&self, target: f64) -> Result<RebalancePlan, PlacementError> {
        self.tenants.rebalance_plan(target).await
    }

    /// Plans and begins running the moves, `parallel` at a time (or
    /// answers with the rebalance already running); each tenant moved
    /// loses its sessions when the rebalance ends.
    pub async fn rebalance(
        &self,
        actor: &Actor,
        target: f64,
        parallel: usize,
        progress: RebalanceProgress,
    ) -> Result<Launched<Vec<RebalanceItem>, PlacementError>, PlacementError> {
        let t = &self.tenants;
        let what = (None, "servers.rebalance", "servers");
        let change = t.start_rebalance(target, parallel, progress);
        let started = t.audited(actor, what, change, |_| None).await?;
        let routes = t.routes.clone();
        Ok(launch(started, move |run| async move {
            let result = run.await;
            if let Ok(items) = &result {
                for item in items.iter().filter(|i| i.outcome == "moved") {
                    routes.tenant_changed(item.tenant_id, true).await;
                }
            }
            result
        }))
    }
}
