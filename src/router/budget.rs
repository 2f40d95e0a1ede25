//! The connection budget: a semaphore per database server whose permits are
//! held by each session's connection task, from before it connects until
//! its socket has closed. So the open router connections to a server never
//! exceed its budget, however many tenant pools there are.

use std::sync::{Arc, Weak};
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
    pub(super) budget: Arc<Semaphore>,
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
        if let Ok(permit) = self.budget.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        loop {
            if let Some(router) = self.router.upgrade() {
                router.close_idle_on(self.server);
            }
            let wait =
                RECLAIM_EVERY.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, self.budget.clone().acquire_owned()).await {
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
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
        ::metrics::counter!(crate::telemetry::metrics::ROUTER_SESSIONS_OPENED).increment(1);
        // The wrapper aborts the task it is given when dropped; give it one
        // that has nothing to abort, so the session closes cleanly.
        let nothing = tokio::spawn(async {});
        Ok(BudgetedClient {
            client: deadpool_postgres::ClientWrapper::new(client, nothing),
        })
    }

    async fn recycle(&self, obj: &mut BudgetedClient, _: &Metrics) -> RecycleResult<ConnectError> {
        // Fast recycling: a session the server ended is not handed out again.
        if obj.client.is_closed() {
            return Err(deadpool::managed::RecycleError::Message(
                "the session was closed".into(),
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

    pub(super) fn budget(&self, server: &DbServer) -> Arc<Semaphore> {
        let mut budgets = self.budgets.lock().expect("budgets");
        budgets
            .entry(server.id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.budget_size(server))))
            .clone()
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
