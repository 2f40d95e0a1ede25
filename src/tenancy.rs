//! What the HTTP layer needs of this replica's router, as a service: a
//! data-plane request's route, rate limit and session, and the connection
//! counts the server views and gauges show.
//!
//! Rules:
//! - nothing above this module names the router: the HTTP layer reaches
//!   tenant databases only through `Tenancy`.
//! - the hot path costs what the router costs: every method hands back the
//!   router's own future or value (no box, no extra await, no allocation).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::DbServer;
use crate::domain::{TenantId, Tier};

pub use crate::router::{Route, Router, RouterError, SchemaGap, TenantConnection};

/// A cheap clone: the router is a handle.
#[derive(Clone)]
pub struct Tenancy {
    router: Router,
}

impl Tenancy {
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    /// The route of a tenant or subtenant (cached per replica).
    #[inline]
    pub fn route(
        &self,
        id: TenantId,
    ) -> impl Future<Output = Result<Arc<Route>, RouterError>> + '_ {
        self.router.route(id)
    }

    /// The tenant a custom domain belongs to, if any.
    #[inline]
    pub fn tenant_for_domain<'a>(
        &'a self,
        host: &'a str,
    ) -> impl Future<Output = Result<Option<TenantId>, RouterError>> + 'a {
        self.router.tenant_for_domain(host)
    }

    /// Refuses a request over the tenant's rate, with how long to wait.
    #[inline]
    pub fn check_rate(&self, tenant: TenantId, tier: Tier) -> Result<(), Duration> {
        self.router.check_rate(tenant, tier)
    }

    /// A session on the route's database, as the tenant's own role.
    #[inline]
    pub fn connection<'a>(
        &'a self,
        route: &'a Route,
    ) -> impl Future<Output = Result<TenantConnection, RouterError>> + 'a {
        self.router.connection(route)
    }

    /// Sessions open to `server` on this replica, and its budget; `None`
    /// when no tenant of it was served yet.
    pub fn connections_on(&self, server: &DbServer) -> Option<(usize, usize)> {
        self.router.connections_on(server)
    }

    /// The router itself, for start-up and shutdown (and tests): closing
    /// every pool, forgetting every route.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Tenant pools this replica holds.
    pub async fn pools_cached(&self) -> u64 {
        self.router.pools_cached().await
    }
}
