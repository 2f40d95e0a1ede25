//! The gateway's sessions: a pool per tenant and login role, beside the
//! HTTP plane's pools, whose sessions are spoken at the message level
//! (`pg::RawSession`) so a client's messages pass through unchanged.
//!
//! Rules:
//! - A wire session takes a permit of its server's budget before it
//!   connects (`session::acquire`, the HTTP sessions' own path), and gives
//!   it back only after the server ended the backend (`RawSession::close`).
//!   So the HTTP plane and the gateway together never exceed the budget.
//! - Wire pools are closed with the tenant's HTTP pool (`close_pool`): a
//!   move or a suspension reaches both.
//! - A new session is checked before it serves anyone (`wire_checks.rs`):
//!   the database must hold it to what its key may do, and its login must
//!   carry no session default a client set.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool::managed::{Manager, Metrics, Object, Pool, PoolError, RecycleResult};
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use super::budget::{ServerBudget, OPEN};
use super::wire_checks::WireLogin;
use super::{ConnectError, Route, Router, RouterError, RouterInner, WireRole};
use crate::domain::{DbName, TenantId};
use crate::pg::RawSession;

/// How long a gateway client's transaction waits for a session (its
/// tenant's pool, the server's budget) before it is refused with `53300`.
/// A PostgreSQL client queues, as PgBouncer's do (its `query_wait_timeout`
/// is 120 s); an HTTP request gets `router.acquire_timeout_ms`.
pub const WIRE_WAIT: Duration = Duration::from_secs(60);

/// A gateway session to a tenant database, holding its budget permit.
pub struct WireSession {
    raw: Option<RawSession>,
    permit: Option<OwnedSemaphorePermit>,
    debt: Arc<AtomicU8>,
    budget: Arc<ServerBudget>,
    /// Statements prepared on this session, by their server-side names.
    pub prepared: HashSet<String>,
    /// Whether a transaction it served since its last reset ran SQL that
    /// may leave state past the transaction (the gateway's
    /// `session_state`): then it is reset before its next transaction.
    pub leaves_state: bool,
    /// The client settings applied to it (the gateway's
    /// `client_settings`), until a reset.
    pub settings: Option<Arc<str>>,
    /// Whether a client's SQL may have dropped prepared statements, or made
    /// one by name (`DEALLOCATE`, `DISCARD`, `PREPARE`): `prepared` is then
    /// unsure until the next reset drops them all.
    pub statements_unsure: bool,
}

impl WireSession {
    pub fn raw(&mut self) -> &mut RawSession {
        self.raw.as_mut().expect("a live session")
    }

    /// What the server reported at the session's start.
    pub fn raw_parameters(&self) -> Vec<(String, String)> {
        self.raw
            .as_ref()
            .map(|r| r.parameters.clone())
            .unwrap_or_default()
    }
}

impl WireSession {
    /// Whether closing this idle session pays a shrunk budget's debt.
    pub(super) fn pays(&self, budget: &ServerBudget) -> bool {
        budget.collect(&self.debt)
    }

    /// Whether this idle session may be closed to give its permit to a
    /// waiter (`ServerBudget::mark_reclaimed`).
    pub(super) fn reclaim(&self, budget: &ServerBudget) -> bool {
        budget.mark_reclaimed(&self.debt)
    }
}

impl Drop for WireSession {
    fn drop(&mut self) {
        let (Some(raw), Some(permit)) = (self.raw.take(), self.permit.take()) else {
            return;
        };
        let (budget, debt) = (self.budget.clone(), self.debt.clone());
        tokio::spawn(async move {
            raw.close().await;
            budget.settle(&debt, permit);
        });
    }
}

/// Makes wire sessions within the server's budget.
pub struct WireManager {
    /// How its sessions open, and what each is checked for.
    login: Arc<WireLogin>,
    budget: Arc<ServerBudget>,
    server: Uuid,
    acquire_timeout: Duration,
    router: Weak<RouterInner>,
}

impl Manager for WireManager {
    type Type = WireSession;
    type Error = ConnectError;

    async fn create(&self) -> Result<WireSession, ConnectError> {
        let (permit, slot) = super::session::acquire(
            &self.budget,
            self.server,
            &self.router,
            self.acquire_timeout,
        )
        .await?;
        let (login, budget) = (self.login.clone(), self.budget.clone());
        // Made to the end even if nobody waits for it any more: dropped in
        // its checks (which may wait for a revert's lock), its backend would
        // live on beside a permit given back.
        super::starts::to_the_end(async move {
            let raw = login.open(slot).await?;
            ::metrics::counter!(crate::telemetry::metrics::ROUTER_SESSIONS_OPENED).increment(1);
            Ok(WireSession {
                raw: Some(raw),
                permit: Some(permit),
                debt: Arc::new(AtomicU8::new(OPEN)),
                budget,
                prepared: HashSet::new(),
                leaves_state: false,
                settings: None,
                statements_unsure: false,
            })
        })
        .await
    }

    async fn recycle(&self, obj: &mut WireSession, _: &Metrics) -> RecycleResult<ConnectError> {
        if !obj.raw().is_open() {
            return Err(deadpool::managed::RecycleError::Message(
                "the session broke or its server ended it".into(),
            ));
        }
        if self.budget.collect(&obj.debt) {
            return Err(deadpool::managed::RecycleError::Message(
                "the server's budget shrank".into(),
            ));
        }
        Ok(())
    }
}

/// One tenant's wire pool for one role, and where it points.
#[derive(Clone)]
pub(super) struct WirePool {
    pub(super) pool: Pool<WireManager>,
    pub(super) server: Uuid,
    db: DbName,
    pub(super) tier_size: usize,
    pub(super) demand: Arc<super::demand::Demand>,
    /// What the server reported at a session's start, once one started.
    parameters: Arc<std::sync::OnceLock<Vec<(String, String)>>>,
    /// Whether the gateway made sure its login role exists on `server`:
    /// a pool lives on one server, so a move (away, and back to a server
    /// that dropped the role meanwhile) makes sure again.
    role_ensured: Arc<std::sync::atomic::AtomicBool>,
}

/// A pooled wire session; back to its pool when dropped.
pub type WireConnection = Object<WireManager>;

/// Closes a session whose state the gateway lost, at once: taken out of
/// its pool (which may make another). Back in its pool it would keep an
/// abandoned transaction's locks, and a checkout would hand it out.
pub fn discard_wire_session(session: WireConnection) {
    drop(Object::take(session));
}

impl Router {
    /// A wire session to the route's database as `role`, within the budget.
    pub async fn wire_session(
        &self,
        route: &Route,
        role: WireRole,
    ) -> Result<WireConnection, RouterError> {
        let key = (route.root.id, role);
        for _ in 0..3 {
            let pool = self
                .inner
                .wire_pools
                .try_get_with(key, async { self.build_wire_pool(route, role) })
                .await
                .map_err(|e| (*e).clone())?;
            if pool.server != route.server.id || Some(&pool.db) != route.root.db_name.as_ref() {
                self.inner.wire_pools.invalidate(&key).await;
                continue;
            }
            pool.demand.used();
            return match super::connect::take(&pool.pool).await {
                Ok(session) => Ok(session),
                Err(PoolError::Backend(ConnectError::BudgetSpent) | PoolError::Timeout(_)) => {
                    Err(RouterError::BudgetSpent)
                }
                Err(PoolError::Backend(ConnectError::SchemaBehind(gap))) => {
                    Err(RouterError::SchemaBehind(gap))
                }
                Err(PoolError::Backend(e)) => Err(RouterError::ServerUnreachable(Arc::new(e))),
                Err(_) => {
                    self.inner.wire_pools.invalidate(&key).await;
                    continue;
                }
            };
        }
        Err(RouterError::PoolClosed)
    }

    /// The server's start-up parameters (`server_version`, `TimeZone`, …)
    /// for a client's login: read from a session of the pool once.
    pub async fn wire_parameters(
        &self,
        route: &Route,
        role: WireRole,
    ) -> Result<Vec<(String, String)>, RouterError> {
        let key = (route.root.id, role);
        if let Some(pool) = self.inner.wire_pools.get(&key).await {
            if let Some(known) = pool.parameters.get() {
                return Ok(known.clone());
            }
        }
        let session = self.wire_session(route, role).await?;
        let parameters = session.raw_parameters();
        if let Some(pool) = self.inner.wire_pools.get(&key).await {
            let _ = pool.parameters.set(parameters.clone());
        }
        Ok(parameters)
    }

    /// Whether the login role of `role` is known to exist on the route's
    /// server (`note_wire_role`), for as long as the pool for it lives.
    pub async fn wire_role_known(&self, route: &Route, role: WireRole) -> bool {
        self.inner
            .wire_pools
            .get(&(route.root.id, role))
            .await
            .is_some_and(|p| p.server == route.server.id && p.role_ensured.load(Ordering::Acquire))
    }

    /// Notes that the login role of `role` exists on the route's server.
    pub async fn note_wire_role(&self, route: &Route, role: WireRole) -> Result<(), RouterError> {
        let pool = self
            .inner
            .wire_pools
            .try_get_with((route.root.id, role), async {
                self.build_wire_pool(route, role)
            })
            .await
            .map_err(|e| (*e).clone())?;
        if pool.server == route.server.id {
            pool.role_ensured.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn build_wire_pool(&self, route: &Route, role: WireRole) -> Result<WirePool, RouterError> {
        let db = route.root.db_name.clone().ok_or(RouterError::Inconsistent(
            "a root tenant without a database",
        ))?;
        let mut config = self.tenant_session_config(route)?;
        // Every role of the tenant has the tenant role's password (with a
        // verifier of its own).
        config.user(role.login(&db));
        config.application_name("tenant-plane-gateway");
        // Pinned at start-up, above the login's defaults, whatever a client
        // set on its login: a deferrable default would hold the session's
        // checks on a serializable snapshot, an idle timeout end a pooled
        // session. A read-only login's writes fail as read-only (25006),
        // which says why; its privileges hold if the client turns this off.
        let options = format!(
            "{} -c default_transaction_deferrable=off -c idle_session_timeout=0{}",
            config.get_options().unwrap_or_default(),
            if role.read_only() {
                " -c default_transaction_read_only=on"
            } else {
                ""
            }
        );
        config.options(options);
        let role_ensured = Arc::<std::sync::atomic::AtomicBool>::default();
        let login = WireLogin {
            config,
            subtenant: role.subtenant(),
            read_only: role.read_only(),
            role_ensured: role_ensured.clone(),
            first_check: super::wire_checks::first_check(
                self.inner.stray_defaults,
                &db,
                role.read_only(),
            ),
            stray_check: super::wire_checks::stray_check(
                self.inner.stray_defaults,
                &db,
                role.read_only(),
            ),
        };
        let manager = WireManager {
            login: Arc::new(login),
            budget: self.inner.budget(&route.server),
            server: route.server.id,
            acquire_timeout: WIRE_WAIT,
            router: Arc::downgrade(&self.inner),
        };
        let (pool, tier_size) = self.sized_pool(route, manager, WIRE_WAIT)?;
        Ok(WirePool {
            pool,
            server: route.server.id,
            db,
            tier_size,
            demand: Arc::default(),
            parameters: Arc::default(),
            role_ensured,
        })
    }
}

impl RouterInner {
    /// Closes a tenant's wire pools (every role, its subtenants' too).
    pub(super) async fn close_wire_pools(&self, tenant: TenantId) {
        let keys: Vec<_> = self
            .wire_pools
            .iter()
            .filter(|(key, _)| key.0 == tenant || key.1.subtenant() == Some(tenant))
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            self.wire_pools.invalidate(&key).await;
        }
    }
}
