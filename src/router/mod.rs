//! The connection router: one deadpool pool per tenant database, kept in a
//! moka LRU (`router.max_pools`), each connecting as the tenant's own role.
//! A per-server budget caps the open connections across all pools, so the
//! number of tenants never decides the number of connections. Tenant routes
//! (placement, status, effective settings) are cached too, and forgotten when
//! the catalog announces a change (`listen.rs`).
//!
//! Rules:
//! - Nothing but the router opens tenant-role connections, and every one
//!   counts against its server's budget (`budget.rs`).
//! - A catalog outage never stops a tenant the router already knows: its
//!   last loaded route is served, only while the catalog is unreachable, and
//!   never after an invalidation that touched it (a change notice for it or
//!   its root, forgetting every route, or a catalog read that found it
//!   unservable).

mod budget;
mod connect;
mod demand;
mod limits;
mod listen;
mod reclaim;
mod route;
mod session;
mod starts;
mod wire;
mod wire_checks;
mod wire_role;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool::managed::{Object, Pool};
use moka::future::Cache;
use uuid::Uuid;

use budget::ServerBudget;
pub use limits::{tier_rate, RateLimits};
pub use listen::spawn_listener;
pub use route::Route;
pub use session::{BudgetedClient, BudgetedManager, ConnectError, SchemaGap};
pub use wire::{discard_wire_session, WireConnection, WireManager, WireSession};
pub use wire_role::WireRole;

use crate::config::RouterSettings;
use crate::directory::{CatalogError, DbServer};
use crate::directory::{CredentialsError, Directory};
use crate::domain::{DbName, TenantId, TenantStatus, Tier};

/// A pooled connection to one tenant's database, as its own role.
pub type TenantConnection = Object<BudgetedManager>;

/// Why a tenant's request cannot be routed. Cloneable, with its causes
/// shared: the route cache hands one error to every request that waited.
#[derive(Debug, Clone, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum RouterError {
    #[error("no such tenant")]
    NotFound,
    #[error("the tenant is suspended")]
    Suspended,
    #[error("the tenant is deleted")]
    Deleted,
    #[error("the tenant is not ready ({0:?})")]
    NotReady(TenantStatus),
    #[error("the tenant's database server is down")]
    ServerDown,
    #[error("the catalog is unreachable")]
    CatalogUnavailable(#[source] Arc<CatalogError>),
    #[error("looking up the tenant's route failed")]
    Lookup(#[source] Arc<CatalogError>),
    #[error("the catalog's records disagree: {0}")]
    Inconsistent(&'static str),
    #[error("the tenant's credentials cannot be used")]
    Credentials(#[source] Arc<CredentialsError>),
    #[error("the tenant's pool cannot be built")]
    PoolBuild(#[source] Arc<deadpool::managed::BuildError>),
    #[error("the connection budget of the tenant's server is spent")]
    BudgetSpent,
    #[error("the tenant's database server is unreachable")]
    ServerUnreachable(#[source] Arc<dyn std::error::Error + Send + Sync>),
    #[error("the tenant's pool is closed")]
    PoolClosed,
    /// A gateway session its database would not hold (never the HTTP
    /// plane's: its sessions run as the tenant's HTTP login, scoped by the
    /// service).
    #[error("{0}")]
    SchemaBehind(SchemaGap),
}

/// One tenant's pool, and where it points.
#[derive(Clone)]
struct TenantPool {
    pool: Pool<BudgetedManager>,
    server: Uuid,
    db: DbName,
    /// Its tier's size; the pool is smaller while the server's budget is.
    tier_size: usize,
    /// Its requests, how many and when: when the budget is spent, the idle
    /// session closed to make room is chosen by them (`demand.rs`,
    /// `reclaim.rs`).
    demand: Arc<demand::Demand>,
}

struct RouterInner {
    directory: Directory,
    settings: RouterSettings,
    pools: Cache<TenantId, TenantPool>,
    /// The gateway's pools, per tenant and login role (`wire.rs`).
    wire_pools: Cache<(TenantId, WireRole), wire::WirePool>,
    routes: Cache<TenantId, Arc<Route>>,
    /// The last route loaded for each tenant, served only while the catalog
    /// is unreachable, so that cached tenants keep working through a
    /// catalog restart. Every invalidation that touches a route touches its
    /// entry here too (a tenant's, its subtenants' through their root, or
    /// all), so the fallback never serves a route known to be stale.
    last_known: Cache<TenantId, Arc<Route>>,
    /// Custom domain → tenant; forgotten with any change notice.
    domains: Cache<String, Option<TenantId>>,
    /// Server rows for route loads, so that a cold route costs one catalog
    /// read, not two; forgotten with every route (a server change notice
    /// forgets them all).
    servers: Cache<Uuid, DbServer>,
    budgets: Mutex<HashMap<Uuid, Arc<ServerBudget>>>,
    limits: RateLimits,
    /// What a new gateway session asks of itself about its login's session
    /// defaults (`wire_checks.rs`): the owner of the roles says.
    stray_defaults: StrayDefaults,
}

/// Builds the SQL condition, true when a new gateway session of `db`'s
/// login (a writer's, or not) did not start with the defaults the service
/// gives it.
pub type StrayDefaults = fn(&DbName, bool) -> String;

#[derive(Clone)]
pub struct Router {
    inner: Arc<RouterInner>,
}

/// How long a request waits for one of its tenant's busy sessions before it
/// takes a session from another tenant, when the budget is spent.
const OWN_SESSION_WAIT: Duration = Duration::from_millis(50);

/// Pool size of one tenant of `tier` with the default settings; the
/// server budget caps the sum (`router.pool_size_*` change it).
pub fn pool_size(tier: Tier) -> usize {
    RouterSettings::default().pool_size(tier)
}

impl Router {
    pub fn new(
        directory: Directory,
        settings: RouterSettings,
        stray_defaults: StrayDefaults,
    ) -> Self {
        let idle = Duration::from_secs(settings.idle_timeout_secs);
        let pools = Cache::builder()
            .max_capacity(settings.max_pools)
            .time_to_idle(idle)
            .eviction_listener(|tenant: Arc<TenantId>, pool: TenantPool, cause| {
                tracing::debug!(tenant.id = %tenant, ?cause, "closing an evicted tenant pool");
                ::metrics::counter!(crate::telemetry::metrics::ROUTER_POOL_EVICTIONS).increment(1);
                pool.pool.close();
            })
            .build();
        let routes = Cache::builder()
            .max_capacity(settings.max_pools.saturating_mul(4))
            .time_to_live(Duration::from_secs(settings.route_ttl_secs))
            .build();
        let wire_pools = Cache::builder()
            .max_capacity(settings.max_pools)
            .time_to_idle(idle)
            .eviction_listener(|_, pool: wire::WirePool, _| pool.pool.close())
            .build();
        Self {
            inner: Arc::new(RouterInner {
                directory,
                pools,
                wire_pools,
                last_known: Cache::builder()
                    .max_capacity(settings.max_pools.saturating_mul(4))
                    .build(),
                routes,
                domains: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(settings.route_ttl_secs))
                    .build(),
                servers: Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(Duration::from_secs(settings.route_ttl_secs))
                    .build(),
                budgets: Mutex::default(),
                limits: RateLimits::new(settings.rate_limit_scale),
                stray_defaults,
                settings,
            }),
        }
    }

    /// Where a tenant (or subtenant) is and what it may do, from the cache.
    pub async fn route(&self, id: TenantId) -> Result<Arc<Route>, RouterError> {
        if let Some(route) = self.inner.routes.get(&id).await {
            return Ok(route);
        }
        Box::pin(self.load_route(id)).await
    }

    async fn load_route(&self, id: TenantId) -> Result<Arc<Route>, RouterError> {
        let inner = &self.inner;
        let loaded = inner
            .routes
            .try_get_with(id, async {
                let route = Arc::new(route::load(inner, id).await?);
                inner.last_known.insert(id, route.clone()).await;
                Ok::<_, RouterError>(route)
            })
            .await;
        match loaded {
            Ok(route) => Ok(route),
            Err(e) if matches!(*e, RouterError::CatalogUnavailable(_)) => {
                match inner.last_known.get(&id).await {
                    Some(route) => Ok(route),
                    None => Err((*e).clone()),
                }
            }
            Err(e) => {
                // The catalog answered: the tenant is not servable now (or
                // is gone), so its last known route is stale.
                inner.last_known.invalidate(&id).await;
                Err((*e).clone())
            }
        }
    }

    /// Forgets a tenant's route (its pool is checked against the new route
    /// on next use), and the domain map, which may name it.
    pub async fn invalidate(&self, id: TenantId) {
        self.inner.routes.invalidate(&id).await;
        self.inner.last_known.invalidate(&id).await;
        // A root's change (suspension, a move) holds for its subtenants too,
        // whether their live route has expired or not: the last known one
        // could otherwise serve a subtenant of a suspended root.
        let children: std::collections::HashSet<TenantId> = self
            .inner
            .routes
            .iter()
            .chain(self.inner.last_known.iter())
            .filter(|(_, route)| route.root.id == id)
            .map(|(child, _)| *child)
            .collect();
        for child in children {
            self.inner.routes.invalidate(&child).await;
            self.inner.last_known.invalidate(&child).await;
        }
        self.inner.domains.invalidate_all();
    }

    /// Forgets every route, last known ones included: used when change
    /// notices may have been missed, so none of them may be trusted.
    pub fn invalidate_all(&self) {
        self.inner.routes.invalidate_all();
        self.inner.last_known.invalidate_all();
        self.inner.servers.invalidate_all();
        self.inner.domains.invalidate_all();
    }

    /// The tenant a custom domain belongs to, if any.
    pub async fn tenant_for_domain(&self, host: &str) -> Result<Option<TenantId>, RouterError> {
        let host = host.split(':').next().unwrap_or(host);
        // An address literal is never a registered domain: skip the lookup.
        if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(None);
        }
        let host = host.to_ascii_lowercase();
        if let Some(known) = self.inner.domains.get(&host).await {
            return Ok(known);
        }
        let directory = self.inner.directory.clone();
        Box::pin(self.inner.domains.try_get_with(host.clone(), async move {
            directory
                .tenant_for_domain(&host)
                .await
                .map_err(route::lookup_failed)
        }))
        .await
        .map_err(|e| (*e).clone())
    }

    /// Takes one request from the tenant's rate-limit bucket.
    pub fn check_rate(&self, tenant: TenantId, tier: Tier) -> Result<(), Duration> {
        self.inner.limits.check(tenant, tier)
    }

    /// Closes a tenant's pool now (suspension, deletion, a move).
    pub async fn close_pool(&self, id: TenantId) {
        self.inner.pools.invalidate(&id).await;
        self.inner.close_wire_pools(id).await;
    }

    /// Closes connections idle for longer than `router.idle_timeout_secs`,
    /// and ages every pool's request count, so that a tenant hot an hour
    /// ago does not keep its sessions over one hot now.
    pub fn reap_idle(&self) {
        let max_idle = Duration::from_secs(self.inner.settings.idle_timeout_secs);
        for (_, pool) in self.inner.wire_pools.iter() {
            pool.pool
                .retain(|_, metrics| metrics.last_used() < max_idle);
            pool.demand.age();
        }
        for (_, pool) in self.inner.pools.iter() {
            pool.pool
                .retain(|_, metrics| metrics.last_used() < max_idle);
            pool.demand.age();
        }
    }

    /// Router connections open to `server` now, and its budget, as this
    /// replica sees them (`None`: no tenant of it was served yet).
    pub fn connections_on(&self, server: &DbServer) -> Option<(usize, usize)> {
        let budgets = self.inner.budgets.lock().expect("budgets");
        let budget = budgets.get(&server.id)?;
        Some((budget.open(), budget.size()))
    }

    /// Applies `server.connection_budget` (a row just read from the
    /// catalog) to this replica's budget and pools for it.
    pub fn follow_budget(&self, server: &DbServer) {
        self.inner.apply_budget(server);
    }

    /// Re-reads every server this replica has a budget for and follows its
    /// `connection_budget`: on a server change notice, and when the change
    /// listener (re)connects, since notices sent meanwhile were lost.
    pub async fn refresh_budgets(&self) {
        let served: Vec<Uuid> = self
            .inner
            .budgets
            .lock()
            .expect("budgets")
            .keys()
            .copied()
            .collect();
        for id in served {
            match self.inner.directory.server(id).await {
                Ok(Some(server)) => self.follow_budget(&server),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(server.id = %id, error = %e, "could not re-read a server's budget")
                }
            }
        }
    }

    /// Pools cached now (after pending evictions ran).
    pub async fn pools_cached(&self) -> u64 {
        self.inner.pools.run_pending_tasks().await;
        self.inner.pools.entry_count()
    }

    /// Runs `reap_idle` periodically until `shutdown`.
    pub fn spawn_reaper(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let router = self.clone();
        let every = Duration::from_secs((self.inner.settings.idle_timeout_secs / 4).clamp(1, 60));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {
                        router.reap_idle();
                        router.inner.limits.forget_idle();
                    }
                }
            }
        })
    }

    /// Closes every pool: the last step of shutdown.
    pub async fn close_all(&self) {
        for (_, pool) in self.inner.pools.iter() {
            pool.pool.close();
        }
        for (_, pool) in self.inner.wire_pools.iter() {
            pool.pool.close();
        }
        self.inner.wire_pools.invalidate_all();
        self.inner.pools.invalidate_all();
        self.inner.pools.run_pending_tasks().await;
    }
}
