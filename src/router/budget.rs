//! The connection budget: a semaphore per database server whose permits are
//! held by each session's connection task, from before it connects until
//! its socket has closed. So the open router connections to a server never
//! exceed its budget, however many tenant pools there are.
//!
//! An operator may change a server's budget while it serves. Growing adds
//! permits at once. Shrinking forgets the free permits and owes the rest:
//! idle sessions are closed to pay, and busy ones pay when they come back
//! (an owed permit is forgotten when its session closes, not returned).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool::managed::{Manager, Metrics, RecycleResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::{RouterInner, TenantPool};
use crate::catalog::DbServer;

/// A tenant connection; its connection task holds one permit of its
/// server's budget.
pub struct BudgetedClient {
    client: deadpool_postgres::ClientWrapper,
    /// `OPEN`, `PAYS` (it was closed to pay a shrunk budget's debt) or
    /// `CLOSED` (its permit is settled); shared with its connection task.
    debt: Arc<AtomicU8>,
}

const OPEN: u8 = 0;
const PAYS: u8 = 1;
const CLOSED: u8 = 2;

/// One server's budget, resizable while sessions hold its permits.
pub struct ServerBudget {
    permits: Arc<Semaphore>,
    size: AtomicUsize,
    /// Permits to forget, after a shrink, that no session has taken on yet.
    owed: AtomicUsize,
    resizing: Mutex<()>,
    /// One change applied at a time, pools included: a second caller (the
    /// change notice racing the PATCH) waits, then finds nothing to do.
    applying: Mutex<()>,
}

impl ServerBudget {
    pub fn new(size: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size: AtomicUsize::new(size),
            owed: AtomicUsize::new(0),
            resizing: Mutex::new(()),
            applying: Mutex::new(()),
        }
    }

    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// Sessions holding a permit now.
    pub fn open(&self) -> usize {
        (self.size() + self.owed.load(Ordering::Relaxed))
            .saturating_sub(self.permits.available_permits())
    }

    /// No new session may open without another one closing first.
    pub fn spent(&self) -> bool {
        self.permits.available_permits() == 0 || self.owed.load(Ordering::Relaxed) > 0
    }

    /// Takes one owed permit on, if any are owed.
    fn take_debt(&self) -> bool {
        self.owed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
            .is_ok()
    }

    /// Grows or shrinks to `size`; says whether permits are owed now.
    pub fn resize(&self, size: usize) -> bool {
        let _one_at_a_time = self.resizing.lock().expect("resizing");
        let old = self.size();
        if size > old {
            let mut grow = size - old;
            // Debt not yet taken on is cancelled rather than paid.
            while grow > 0 && self.take_debt() {
                grow -= 1;
            }
            self.permits.add_permits(grow);
        } else if size < old {
            let shrink = old - size;
            let forgotten = self.permits.forget_permits(shrink);
            self.owed.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
        self.size.store(size, Ordering::Relaxed);
        self.owed.load(Ordering::Acquire) > 0
    }

    /// Marks a live session to pay one owed permit as it closes, if any are
    /// owed; the caller then closes it. A session already closed has
    /// settled its own permit, so it cannot pay.
    fn collect(&self, session: &AtomicU8) -> bool {
        if session.load(Ordering::Acquire) != OPEN || !self.take_debt() {
            return false;
        }
        if session
            .compare_exchange(OPEN, PAYS, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return true;
        }
        // It closed meanwhile: the debt stays owed.
        self.owed.fetch_add(1, Ordering::AcqRel);
        false
    }

    /// What a closing session does with its permit: forgets it when the
    /// session was collected for a debt or a debt is owed (so a shrunk
    /// budget is paid by whichever sessions close first), or gives it back.
    fn settle(&self, session: &AtomicU8, permit: OwnedSemaphorePermit) {
        if session.swap(CLOSED, Ordering::AcqRel) == PAYS || self.take_debt() {
            permit.forget();
        } else {
            drop(permit);
        }
    }
}

impl std::ops::Deref for BudgetedClient {
    type Target = deadpool_postgres::ClientWrapper;
    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl std::ops::DerefMut for BudgetedClient {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.client
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the server's connection budget stayed spent for the whole acquire timeout")]
    BudgetSpent,
    #[error("cannot connect to the tenant database")]
    Postgres(#[from] tokio_postgres::Error),
}

/// Makes tenant connections only within the server's budget.
pub struct BudgetedManager {
    /// The tenant role's connection settings.
    pub(super) config: tokio_postgres::Config,
    pub(super) budget: Arc<ServerBudget>,
    pub(super) server: Uuid,
    pub(super) acquire_timeout: Duration,
    /// To close idle connections of other tenants when the budget is spent.
    pub(super) router: Weak<RouterInner>,
}

/// How often a waiter closes idle connections that were returned meanwhile.
const RECLAIM_EVERY: Duration = Duration::from_millis(20);

impl BudgetedManager {
    /// A permit of the server's budget. While the budget is spent, an idle
    /// connection of another tenant on the server is closed to give its
    /// permit back (connections returned to a pool go idle, not back to the
    /// budget), until `acquire_timeout` runs out.
    async fn acquire(&self) -> Result<OwnedSemaphorePermit, ConnectError> {
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        loop {
            let permit = self.acquire_by(deadline).await?;
            // After a shrink, a permit that comes free pays the debt first.
            if self.budget.take_debt() {
                permit.forget();
                continue;
            }
            return Ok(permit);
        }
    }

    async fn acquire_by(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit, ConnectError> {
        let permits = &self.budget.permits;
        if let Ok(permit) = permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        loop {
            if let Some(router) = self.router.upgrade() {
                router.close_idle_on(self.server);
            }
            let wait =
                RECLAIM_EVERY.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => return Ok(permit),
                Ok(Err(_)) => return Err(ConnectError::BudgetSpent),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(ConnectError::BudgetSpent)
                }
                Err(_) => {}
            }
        }
    }
}

impl Manager for BudgetedManager {
    type Type = BudgetedClient;
    type Error = ConnectError;

    async fn create(&self) -> Result<BudgetedClient, ConnectError> {
        let permit = self.acquire().await?;
        let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
        // The permit goes back only when the session's socket has closed
        // (the client was dropped and the session ended), not before.
        let debt = Arc::new(AtomicU8::new(OPEN));
        let (session, budget) = (debt.clone(), self.budget.clone());
        tokio::spawn(async move {
            let _ = connection.await;
            budget.settle(&session, permit);
        });
        ::metrics::counter!(crate::telemetry::metrics::ROUTER_SESSIONS_OPENED).increment(1);
        // The wrapper aborts the task it is given when dropped; give it one
        // that has nothing to abort, so the session closes cleanly.
        let nothing = tokio::spawn(async {});
        Ok(BudgetedClient {
            client: deadpool_postgres::ClientWrapper::new(client, nothing),
            debt,
        })
    }

    async fn recycle(&self, obj: &mut BudgetedClient, _: &Metrics) -> RecycleResult<ConnectError> {
        // Fast recycling: a session the server ended is not handed out again.
        if obj.client.is_closed() {
            return Err(deadpool::managed::RecycleError::Message(
                "the session was closed".into(),
            ));
        }
        // A shrunk budget is paid with sessions as they come back.
        if self.budget.collect(&obj.debt) {
            return Err(deadpool::managed::RecycleError::Message(
                "the server's budget shrank".into(),
            ));
        }
        Ok(())
    }
}

impl RouterInner {
    pub(super) fn budget_size(&self, server: &DbServer) -> usize {
        server
            .connection_budget
            .and_then(|b| usize::try_from(b).ok())
            .unwrap_or(self.settings.connection_budget as usize)
            .max(1)
    }

    /// The server's budget, made at its first use.
    pub(super) fn budget(&self, server: &DbServer) -> Arc<ServerBudget> {
        let mut budgets = self.budgets.lock().expect("budgets");
        budgets
            .entry(server.id)
            .or_insert_with(|| Arc::new(ServerBudget::new(self.budget_size(server))))
            .clone()
    }

    /// Whether the server's budget is spent (the request path's check).
    pub(super) fn budget_spent(&self, server: Uuid) -> bool {
        let budgets = self.budgets.lock().expect("budgets");
        budgets.get(&server).is_some_and(|b| b.spent())
    }

    /// Resizes the server's budget to `server.connection_budget`, from a
    /// row just read from the catalog (a route's copy may be older), and
    /// its pools' sizes with it. A shrink closes idle sessions to pay now.
    pub(super) fn apply_budget(&self, server: &DbServer) {
        let Some(budget) = self
            .budgets
            .lock()
            .expect("budgets")
            .get(&server.id)
            .cloned()
        else {
            return;
        };
        let _one_at_a_time = budget.applying.lock().expect("applying");
        let size = self.budget_size(server);
        if budget.size() == size {
            return;
        }
        let owed = budget.resize(size);
        for (_, pool) in self.pools.iter().filter(|(_, p)| p.server == server.id) {
            pool.pool.resize(pool.tier_size.min(size));
            if owed {
                pool.pool.retain(|client, _| !budget.collect(&client.debt));
            }
        }
    }

    /// Closes one idle connection on `server`: the one unused for longest,
    /// whichever tenant it belongs to, giving its permit to a waiter. One at
    /// a time: closing every idle connection would make all tenants
    /// reconnect at once.
    pub(super) fn close_idle_on(&self, server: Uuid) -> bool {
        let mut victim: Option<(TenantPool, Duration)> = None;
        for (_, pool) in self.pools.iter().filter(|(_, p)| p.server == server) {
            if pool.pool.status().available == 0 {
                continue;
            }
            // `retain` visits only idle connections; keeping them all just reads.
            let mut idle_for = Duration::ZERO;
            pool.pool.retain(|_, metrics| {
                idle_for = idle_for.max(metrics.last_used());
                true
            });
            if victim
                .as_ref()
                .is_none_or(|(_, longest)| idle_for > *longest)
            {
                victim = Some((pool, idle_for));
            }
        }
        let Some((pool, longest)) = victim else {
            return false;
        };
        let mut closed = false;
        pool.pool.retain(|_, metrics| {
            if !closed && metrics.last_used() >= longest {
                closed = true;
                return false;
            }
            true
        });
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(budget: &ServerBudget, n: usize) -> Vec<OwnedSemaphorePermit> {
        (0..n)
            .map(|_| {
                budget
                    .permits
                    .clone()
                    .try_acquire_owned()
                    .expect("a free permit")
            })
            .collect()
    }

    /// Sessions holding `n` permits, as their connection tasks would.
    fn sessions(budget: &ServerBudget, n: usize) -> Vec<(AtomicU8, OwnedSemaphorePermit)> {
        hold(budget, n)
            .into_iter()
            .map(|p| (AtomicU8::new(OPEN), p))
            .collect()
    }

    #[test]
    fn shrinking_forgets_free_permits_at_once_and_the_held_ones_as_sessions_close() {
        let budget = ServerBudget::new(10);
        let mut open = sessions(&budget, 8);
        assert!(budget.resize(4), "four held permits are owed");
        assert_eq!((budget.open(), budget.size()), (8, 4));
        assert!(budget.spent());
        // Whichever sessions close first pay; the last four keep their permits.
        for _ in 0..4 {
            let (state, permit) = open.pop().unwrap();
            budget.settle(&state, permit);
        }
        assert_eq!(budget.open(), 4);
        assert!(budget.spent(), "four open of four");
        let (state, permit) = open.pop().unwrap();
        budget.settle(&state, permit);
        assert_eq!((budget.open(), budget.size()), (3, 4));
        assert_eq!(budget.permits.available_permits(), 1);
        assert!(!budget.spent());
    }

    #[test]
    fn a_collected_session_pays_once_and_a_closed_one_cannot_be_collected() {
        let budget = ServerBudget::new(4);
        let mut open = sessions(&budget, 4);
        assert!(budget.resize(2));
        // A session that already closed (its server ended it) settled its
        // own permit: collecting it must not take a debt it will never pay.
        let (dead, permit) = open.pop().unwrap();
        budget.settle(&dead, permit);
        assert!(!budget.collect(&dead));
        assert_eq!(budget.owed.load(Ordering::Acquire), 1);
        // A live one is collected, then closes: its permit is forgotten, and
        // it does not take a second debt.
        let (live, permit) = open.pop().unwrap();
        assert!(budget.collect(&live));
        assert!(!budget.collect(&live), "collected twice");
        budget.settle(&live, permit);
        assert_eq!(budget.owed.load(Ordering::Acquire), 0);
        assert_eq!((budget.open(), budget.permits.available_permits()), (2, 0));
        // With nothing owed, the rest give their permits back.
        for (state, permit) in open {
            budget.settle(&state, permit);
        }
        assert_eq!(budget.permits.available_permits(), 2);
    }

    #[test]
    fn growing_cancels_debt_before_it_adds_permits() {
        let budget = ServerBudget::new(10);
        let open = sessions(&budget, 10);
        assert!(budget.resize(6));
        assert!(!budget.resize(12), "growing past the old size owes nothing");
        assert_eq!((budget.open(), budget.size()), (10, 12));
        assert_eq!(budget.permits.available_permits(), 2);
        for (state, permit) in open {
            budget.settle(&state, permit);
        }
        assert_eq!(budget.permits.available_permits(), 12);
    }

    #[test]
    fn a_budget_shrunk_with_nothing_held_is_smaller_at_once() {
        let budget = ServerBudget::new(10);
        assert!(!budget.resize(3));
        let held = hold(&budget, 3);
        assert!(budget.permits.clone().try_acquire_owned().is_err());
        assert_eq!(budget.open(), held.len());
    }
}
