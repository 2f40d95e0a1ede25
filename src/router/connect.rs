//! Handing out tenant connections: the pool for a route (built once per
//! tenant, single-flight), and the wait for a busy tenant's own session
//! when the budget is spent.
//!
//! Rule: every tenant session starts with its tier's `statement_timeout` and
//! `idle_in_transaction_session_timeout` (set at connect), so no statement
//! or idle transaction holds a budgeted session longer than its tier allows;
//! a statement past it is `DataError::Timeout` (503 `query_timeout`).

use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{Pool, PoolError, QueueMode};

use super::{
    BudgetedManager, ConnectError, Route, Router, RouterError, TenantConnection, TenantPool,
    OWN_SESSION_WAIT,
};

impl Router {
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
        // The hit path stays small; the single-flight build is boxed, so its
        // large future is only made on a miss (futures are moved by copy).
        let pool = match self.inner.pools.get(&root).await {
            Some(pool) => {
                ::metrics::counter!(crate::telemetry::metrics::ROUTER_POOL_HITS).increment(1);
                pool
            }
            None => Box::pin(self.pool_for(route)).await?,
        };
        // A tenant moved, or its pool outlived a change: start afresh.
        if pool.server != route.server.id || Some(&pool.db) != route.root.db_name.as_ref() {
            self.inner.pools.invalidate(&root).await;
            return Err(RouterError::PoolClosed);
        }
        pool.demand.used();
        self.wait_for_own_session(&pool).await;
        // Boxed: deadpool's `get` future holds its whole connect path.
        match Box::pin(take(&pool.pool)).await {
            Ok(conn) => Ok(conn),
            Err(PoolError::Backend(ConnectError::BudgetSpent) | PoolError::Timeout(_)) => {
                Err(RouterError::BudgetSpent)
            }
            Err(PoolError::Backend(ConnectError::Postgres(e))) => {
                Err(RouterError::ServerUnreachable(Arc::new(e)))
            }
            Err(PoolError::Backend(e @ (ConnectError::Stalled | ConnectError::Stopping))) => {
                Err(RouterError::ServerUnreachable(Arc::new(e)))
            }
            Err(_) => {
                self.inner.pools.invalidate(&root).await;
                Err(RouterError::PoolClosed)
            }
        }
    }

    /// The tenant's pool, built once however many requests ask at once.
    async fn pool_for(&self, route: &Route) -> Result<TenantPool, RouterError> {
        let built = std::sync::atomic::AtomicBool::new(false);
        let pool = self
            .inner
            .pools
            .try_get_with(route.root.id, async {
                built.store(true, std::sync::atomic::Ordering::Relaxed);
                self.build_pool(route)
            })
            .await
            .map_err(|e| (*e).clone())?;
        if built.into_inner() {
            ::metrics::counter!(crate::telemetry::metrics::ROUTER_POOL_MISSES).increment(1);
        } else {
            ::metrics::counter!(crate::telemetry::metrics::ROUTER_POOL_HITS).increment(1);
        }
        Ok(pool)
    }

    /// When the server's budget is spent and every session of this tenant is
    /// busy, waits a moment for one of them to come back rather than open a
    /// new one (which would close another tenant's idle session to make room:
    /// under a tight budget that churn costs far more than the wait).
    async fn wait_for_own_session(&self, pool: &TenantPool) {
        // The pool's own handle on its budget: no lock on the request path.
        if !pool.pool.manager().budget.spent() {
            return;
        }
        let deadline = tokio::time::Instant::now() + OWN_SESSION_WAIT;
        loop {
            let status = pool.pool.status();
            if status.size == 0 || status.available > 0 || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn build_pool(&self, route: &Route) -> Result<TenantPool, RouterError> {
        let db = route.root.db_name.clone().ok_or(RouterError::Inconsistent(
            "a root tenant without a database",
        ))?;
        let config = self.tenant_session_config(route)?;
        let manager = BudgetedManager {
            config,
            budget: self.inner.budget(&route.server),
            server: route.server.id,
            acquire_timeout: self.acquire_timeout(),
            router: Arc::downgrade(&self.inner),
        };
        let (pool, tier_size) = self.sized_pool(route, manager, self.acquire_timeout())?;
        Ok(TenantPool {
            pool,
            server: route.server.id,
            db,
            tier_size,
            demand: Arc::default(),
        })
    }

    /// A pool of one tenant's sessions (the HTTP plane's or the gateway's),
    /// of its tier's size within the server's budget; and the tier's size.
    pub(super) fn sized_pool<M: deadpool::managed::Manager>(
        &self,
        route: &Route,
        manager: M,
        wait: Duration,
    ) -> Result<(Pool<M>, usize), RouterError> {
        let tier_size = self.inner.settings.pool_size(route.root.tier);
        let pool = Pool::builder(manager)
            .max_size(tier_size.min(self.inner.budget_size(&route.server)))
            .runtime(deadpool::Runtime::Tokio1)
            // The most recently used session first: a few hot sessions with
            // warm caches serve the load, and the rest go idle for the reaper.
            .queue_mode(QueueMode::Lifo)
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait + Duration::from_secs(5)))
            // Both managers' recycles are checks that never wait (a flag, a
            // read that would block): a timer around each checkout would
            // only cost a timer registration per request.
            .recycle_timeout(None)
            .build()
            .map_err(|e| RouterError::PoolBuild(Arc::new(e)))?;
        Ok((pool, tier_size))
    }

    /// How a session of the route's tenant connects, as its own role.
    pub(super) fn tenant_session_config(
        &self,
        route: &Route,
    ) -> Result<crate::pg::PgConfig, RouterError> {
        let mut config = self
            .inner
            .directory
            .session_config(&route.server, &route.root)
            .map_err(|e| RouterError::Credentials(Arc::new(e)))?;
        config.connect_timeout(Duration::from_millis(
            self.inner.settings.connect_timeout_ms.max(1),
        ));
        // Set at connect: no statement or idle transaction of this tenant
        // holds a budgeted session for longer than its tier allows.
        config.options(format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            statement_timeout_ms(&self.inner.settings, route.root.tier),
            self.inner.settings.idle_in_transaction_timeout_ms
        ));
        Ok(config)
    }

    /// The statement and idle-in-transaction timeouts (ms) a tier's
    /// sessions start with: the gateway holds them too, since its clients
    /// may turn them off.
    pub fn session_timeouts_ms(&self, tier: crate::domain::Tier) -> (u64, u64) {
        (
            statement_timeout_ms(&self.inner.settings, tier),
            self.inner.settings.idle_in_transaction_timeout_ms,
        )
    }

    pub(super) fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.settings.acquire_timeout_ms)
    }
}

/// The statement timeout of a tier's sessions.
fn statement_timeout_ms(
    settings: &crate::config::RouterSettings,
    tier: crate::domain::Tier,
) -> u64 {
    match tier {
        crate::domain::Tier::Free => settings.statement_timeout_free_ms,
        crate::domain::Tier::Standard => settings.statement_timeout_standard_ms,
        crate::domain::Tier::Enterprise => settings.statement_timeout_enterprise_ms,
    }
}

/// A session from `pool`: at once when one is free or may be made, with no
/// timer armed (the common case under load), else waiting up to the
/// pool's wait timeout.
pub(super) async fn take<M: deadpool::managed::Manager>(
    pool: &Pool<M>,
) -> Result<deadpool::managed::Object<M>, PoolError<M::Error>> {
    let mut now = pool.timeouts();
    now.wait = Some(Duration::ZERO);
    match pool.timeout_get(&now).await {
        Err(PoolError::Timeout(deadpool::managed::TimeoutType::Wait)) => pool.get().await,
        other => other,
    }
}
