//! How a command tells this replica's router that a tenant's route changed.
//!
//! Rule: the service command that makes a change tells the router, never
//! the handler that called it. The router registers its hook once at
//! start-up (`set`); a process without a router (the CLI) has none, and
//! its changes reach running servers through the catalog's change notices.
//! Either way the other replicas hear it from the catalog.

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;

use crate::domain::TenantId;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteChange {
    /// The tenant's route is stale; with `close_pool`, its sessions too (a
    /// suspension, a move, a schema change).
    Tenant { id: TenantId, close_pool: bool },
    /// Every route may be stale (a server changed).
    All,
}

pub type Hook = Arc<dyn Fn(RouteChange) -> BoxFuture<'static, ()> + Send + Sync>;

/// Shared by every service that changes routes; cheap to clone.
#[derive(Clone, Default)]
pub struct RouteNotices(Arc<OnceLock<Hook>>);

impl RouteNotices {
    /// Registers the router's hook (the first one set stays).
    pub fn set(&self, hook: Hook) {
        let _ = self.0.set(hook);
    }

    /// Tells the router, and waits until it has acted, so the caller's
    /// answer is never older than the change it reports.
    pub async fn tell(&self, change: RouteChange) {
        if let Some(hook) = self.0.get() {
            hook(change).await;
        }
    }

    pub async fn tenant_changed(&self, id: TenantId, close_pool: bool) {
        self.tell(RouteChange::Tenant { id, close_pool }).await;
    }
}
