//! The connection router: one deadpool pool per tenant database, kept in a
//! moka LRU (`router.max_pools`), each connecting as the tenant's own role.
//! A per-server budget caps the open connections across all pools, so the
//! number of tenants never decides the number of connections. Tenant routes
//! (placement, status, effective settings) are cached too, and forgotten when
//! the catalog announces a change (`listen.rs`).

mod budget;
mod limits;
mod listen;
mod route;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool::managed::{Object, Pool, PoolError, QueueMode};
use deadpool_postgres::{ManagerConfig, RecyclingMethod};
use moka::future::Cache;
use tokio::sync::Semaphore;
use tokio_postgres::NoTls;
use uuid::Uuid;

pub use budget::{BudgetedClient, BudgetedManager, ConnectError};
pub use limits::{tier_rate, RateLimits};
pub use listen::spawn_listener;
pub use route::{Route, RouteError};

use crate::catalog::DbServer;
use crate::config::RouterSettings;
use crate::domain::{TenantId, Tier};
use crate::tenants::Tenants;

/// A pooled connection to one tenant's database, as its own role.
pub type TenantConnection = Object<BudgetedManager>;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error("the connection budget of the tenant's server is spent")]
    BudgetSpent,
    #[error("the tenant's database server is unreachable")]
    ServerUnreachable(#[source] tokio_postgres::Error),
    #[error("the tenant's pool is closed")]
    PoolClosed,
}

/// One tenant's pool, and where it points.
#[derive(Clone)]
struct TenantPool {
    pool: Pool<BudgetedManager>,
    server: Uuid,
    db: String,
}

pub struct RouterInner {
    tenants: Tenants,
    settings: RouterSettings,
    pools: Cache<TenantId, TenantPool>,
    routes: Cache<TenantId, Arc<Route>>,
    /// The last route loaded for each tenant, served only while the catalog
    /// is unreachable, so that cached tenants keep working through a
    /// catalog restart. A change notice removes the tenant's entry.
    last_known: Cache<TenantId, Arc<Route>>,
    /// Custom domain → tenant; forgotten with any change notice.
    domains: Cache<String, Option<TenantId>>,
    budgets: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    limits: RateLimits,
}

#[derive(Clone)]
pub struct Router {
    inner: Arc<RouterInner>,
}

/// Pool size of one tenant, by tier; the server budget caps the sum.
pub fn pool_size(tier: Tier) -> usize {
    match tier {
        Tier::Free => 2,
        Tier::Standard => 5,
        Tier::Enterprise => 10,
    }
}

impl Router {
    pub fn new(tenants: Tenants, settings: RouterSettings) -> Self {
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
        Self {
            inner: Arc::new(RouterInner {
                tenants,
                pools,
                last_known: Cache::builder()
                    .max_capacity(settings.max_pools.saturating_mul(4))
                    .build(),
                routes,
                domains: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(settings.route_ttl_secs))
                    .build(),
                budgets: Mutex::default(),
                limits: RateLimits::new(settings.rate_limit_scale),
                settings,
            }),
        }
    }

    /// Where a tenant (or subtenant) is and what it may do, from the cache.
    pub async fn route(&self, id: TenantId) -> Result<Arc<Route>, RouterError> {
        let inner = &self.inner;
        let loaded = inner
            .routes
            .try_get_with(id, async {
                let route = Arc::new(route::load(&inner.tenants, id).await?);
                inner.last_known.insert(id, route.clone()).await;
                Ok::<_, RouteError>(route)
            })
            .await;
        match loaded {
            Ok(route) => Ok(route),
            Err(e) if matches!(*e, RouteError::CatalogUnavailable) => {
                match inner.last_known.get(&id).await {
                    Some(route) => Ok(route),
                    None => Err(RouterError::Route(RouteError::CatalogUnavailable)),
                }
            }
            Err(e) => Err(RouterError::Route((*e).clone())),
        }
    }

    /// A connection to the route's database, as the tenant's role. Waits up to
    /// `router.acquire_timeout_ms` for the budget, then gives up.
    pub async fn connection(&self, route: &Route) -> Result<TenantConnection, RouterError> {
        // The LRU may evict (and close) a pool while a request waits on it;
        // then a fresh pool is built and the request tries again.
        let mut attempts = 0;
        loop {
            match self.connection_once(route).await {
                Err(RouterError::PoolClosed) if attempts < 3 => attempts += 1,
                other => return other,
            }
        }
    }

    async fn connection_once(&self, route: &Route) -> Result<TenantConnection, RouterError> {
        let root = route.root.id;
        let built = std::sync::atomic::AtomicBool::new(false);
        let pool = self
            .inner
            .pools
            .try_get_with(root, async {
                built.store(true, std::sync::atomic::Ordering::Relaxed);
                self.build_pool(route)
            })
            .await
            .map_err(|e| RouterError::Route(RouteError::Internal(e.to_string())))?;
        if built.into_inner() {
            ::metrics::counter!(crate::telemetry::metrics::ROUTER_POOL_MISSES).increment(1);
        } else {
            ::metrics::counter!(crate::telemetry::metrics::ROUTER_POOL_HITS).increment(1);
        }
        // A tenant moved, or its pool outlived a change: start afresh.
        if pool.server != route.server.id || Some(pool.db.as_str()) != route.root.db_name.as_deref()
        {
            self.inner.pools.invalidate(&root).await;
            return Err(RouterError::PoolClosed);
        }
        match pool.pool.get().await {
            Ok(conn) => Ok(conn),
            Err(PoolError::Backend(ConnectError::BudgetSpent) | PoolError::Timeout(_)) => {
                Err(RouterError::BudgetSpent)
            }
            Err(PoolError::Backend(ConnectError::Postgres(e))) => {
                Err(RouterError::ServerUnreachable(e))
            }
            Err(_) => {
                self.inner.pools.invalidate(&root).await;
                Err(RouterError::PoolClosed)
            }
        }
    }

    fn build_pool(&self, route: &Route) -> Result<TenantPool, RouteError> {
        let db = route
            .root
            .db_name
            .clone()
            .ok_or_else(|| RouteError::Internal("root tenant without a database".into()))?;
        let config = self
            .inner
            .tenants
            .provisioner()
            .tenant_config(
                &route.server,
                &crate::domain::DbName::for_tenant(route.root.id),
                &route.password,
            )
            .map_err(|e| RouteError::Internal(e.to_string()))?;
        let mut config = config;
        config.connect_timeout(Duration::from_millis(
            self.inner.settings.connect_timeout_ms.max(1),
        ));
        let manager = BudgetedManager {
            inner: deadpool_postgres::Manager::from_config(
                config,
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            ),
            budget: self.inner.budget(&route.server),
            server: route.server.id,
            acquire_timeout: self.acquire_timeout(),
            router: Arc::downgrade(&self.inner),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size(route.root.tier).min(self.inner.budget_size(&route.server)))
            .runtime(deadpool::Runtime::Tokio1)
            // The most recently used session first: a few hot sessions with
            // warm caches serve the load, and the rest go idle for the reaper.
            .queue_mode(QueueMode::Lifo)
            .wait_timeout(Some(self.acquire_timeout()))
            .create_timeout(Some(self.acquire_timeout() + Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| RouteError::Internal(e.to_string()))?;
        Ok(TenantPool {
            pool,
            server: route.server.id,
            db,
        })
    }

    fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.settings.acquire_timeout_ms)
    }

    /// Forgets a tenant's route (its pool is checked against the new route
    /// on next use), and the domain map, which may name it.
    pub async fn invalidate(&self, id: TenantId) {
        self.inner.routes.invalidate(&id).await;
        self.inner.last_known.invalidate(&id).await;
        // A root's change (suspension, a move) holds for its subtenants too.
        let children: Vec<TenantId> = self
            .inner
            .routes
            .iter()
            .filter(|(_, route)| route.root.id == id)
            .map(|(child, _)| *child)
            .collect();
        for child in children {
            self.inner.routes.invalidate(&child).await;
            self.inner.last_known.invalidate(&child).await;
        }
        self.inner.domains.invalidate_all();
    }

    /// Forgets every route: used when change notices may have been missed.
    pub fn invalidate_all(&self) {
        self.inner.routes.invalidate_all();
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
        let catalog = self.inner.tenants.catalog().clone();
        self.inner
            .domains
            .try_get_with(host.clone(), async move {
                catalog.tenant_for_domain(&host).await
            })
            .await
            .map_err(|e| match *e {
                crate::catalog::CatalogError::Unavailable(_)
                | crate::catalog::CatalogError::Connect(_) => {
                    RouterError::Route(RouteError::CatalogUnavailable)
                }
                _ => RouterError::Route(RouteError::Internal(e.to_string())),
            })
    }

    /// Takes one request from the tenant's rate-limit bucket.
    pub fn check_rate(&self, tenant: TenantId, tier: Tier) -> Result<(), Duration> {
        self.inner.limits.check(tenant, tier)
    }

    /// Closes a tenant's pool now (suspension, deletion, a move).
    pub async fn close_pool(&self, id: TenantId) {
        self.inner.pools.invalidate(&id).await;
    }

    /// Closes connections idle for longer than `router.idle_timeout_secs`.
    pub fn reap_idle(&self) {
        let max_idle = Duration::from_secs(self.inner.settings.idle_timeout_secs);
        for (_, pool) in self.inner.pools.iter() {
            pool.pool
                .retain(|_, metrics| metrics.last_used() < max_idle);
        }
    }

    /// Router connections open to `server` now, and its budget, as this
    /// replica sees them (`None`: no tenant of it was served yet).
    pub fn connections_on(&self, server: &DbServer) -> Option<(usize, usize)> {
        let budgets = self.inner.budgets.lock().expect("budgets");
        let semaphore = budgets.get(&server.id)?;
        let budget = self.inner.budget_size(server);
        Some((budget.saturating_sub(semaphore.available_permits()), budget))
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
        self.inner.pools.invalidate_all();
        self.inner.pools.run_pending_tasks().await;
    }
}

impl RouterInner {
    fn budget_size(&self, server: &DbServer) -> usize {
        server
            .connection_budget
            .and_then(|b| usize::try_from(b).ok())
            .unwrap_or(self.settings.connection_budget as usize)
            .max(1)
    }

    fn budget(&self, server: &DbServer) -> Arc<Semaphore> {
        let mut budgets = self.budgets.lock().expect("budgets");
        budgets
            .entry(server.id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.budget_size(server))))
            .clone()
    }

    /// Closes one idle connection on `server` (from the pool with the most
    /// idle ones), giving its permit to a waiter. One at a time: closing every
    /// idle connection would make all tenants reconnect at once.
    fn close_idle_on(&self, server: Uuid) -> bool {
        let fullest = self
            .pools
            .iter()
            .filter(|(_, pool)| pool.server == server)
            .max_by_key(|(_, pool)| pool.pool.status().available);
        let Some((_, pool)) = fullest else {
            return false;
        };
        if pool.pool.status().available == 0 {
            return false;
        }
        let mut closed = false;
        pool.pool.retain(|_, _| {
            let keep = closed;
            closed = true;
            keep
        });
        closed
    }
}
