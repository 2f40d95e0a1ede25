//! Tenant sessions made within their server's budget: a session takes a
//! permit before it connects, and its connection task gives it back (or
//! forgets it, to pay a shrunk budget) only once the server has closed the
//! socket, so only after the backend has left `pg_stat_activity`
//! (`pg::ClosingSocket`).

use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool::managed::{Manager, Metrics, RecycleResult};
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use super::budget::{ServerBudget, Turn, OPEN};
use super::starts::StartSlot;
use super::{RouterError, RouterInner};

/// A tenant connection; its connection task holds one permit of its
/// server's budget.
pub struct BudgetedClient {
    client: deadpool_postgres::ClientWrapper,
    /// `OPEN`, `PAYS` (it was closed to pay a shrunk budget's debt) or
    /// `CLOSED` (its permit is settled); shared with its connection task.
    pub(super) debt: Arc<AtomicU8>,
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
    #[error("the server's connection budget, or its sessions starting, stayed taken for the whole acquire timeout")]
    BudgetSpent,
    #[error("cannot connect to the tenant database")]
    Postgres(#[from] crate::pg::SessionError),
    #[error("cannot open a gateway session to the tenant database")]
    Raw(#[from] crate::pg::RawError),
    #[error("the tenant database would not hold a gateway session: {0}")]
    SchemaBehind(SchemaGap),
    #[error("the gateway login carries session defaults a client set")]
    StrayDefaults,
    #[error("a new gateway session's checks were cut short")]
    Unchecked(#[source] crate::pg::RawError),
    #[error("the server did not finish the session's login in time")]
    Stalled,
    #[error("the service is stopping")]
    Stopping,
}

impl RouterError {
    /// Whether a gateway session's login must be made again: the server
    /// refused it (`28P01`, `28000`: its password changed, or the role is
    /// gone), or it carries session defaults a client set.
    pub fn login_to_remake(&self) -> bool {
        let RouterError::ServerUnreachable(e) = self else {
            return false;
        };
        match e.downcast_ref::<ConnectError>() {
            Some(ConnectError::Raw(raw)) => matches!(raw.code(), Some("28P01" | "28000")),
            Some(ConnectError::StrayDefaults) => true,
            _ => false,
        }
    }
}

/// What a tenant database's schema lacks to hold a gateway session to what
/// its key may do. Each names the tenant migration that brings it; the
/// message is the one a client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SchemaGap {
    /// A subtenant's login would be held to its rows by a setting the
    /// client may change.
    #[error("the tenant's database does not hold subtenant sessions to their rows yet: it needs tenant migration V3")]
    SubtenantRows,
    /// A subtenant's login would be held to its rows by a function whose
    /// body each session parses again, with the types it made itself.
    #[error("the tenant's database does not keep subtenant sessions from changing how their scope is read yet: it needs tenant migration V6")]
    SubtenantScopeReparsed,
    /// A read-only login would read the audit log.
    #[error("the tenant's database does not hide its audit log from read-only sessions yet: it needs tenant migration V4")]
    AuditShown,
    /// A writing login could add entries to the audit log.
    #[error("the tenant's database does not keep SQL sessions from writing its audit log yet: it needs tenant migration V5")]
    AuditWritable,
}

/// Makes tenant connections only within the server's budget.
pub struct BudgetedManager {
    /// The tenant role's connection settings.
    pub(super) config: crate::pg::PgConfig,
    pub(super) budget: Arc<ServerBudget>,
    pub(super) server: Uuid,
    pub(super) acquire_timeout: Duration,
    /// To close idle connections of other tenants when the budget is spent.
    pub(super) router: Weak<RouterInner>,
}

/// How often a waiter looks again for idle sessions returned meanwhile,
/// and how long a server's pools go unscanned by such retries: with a
/// thousand waiters, a scan each per retry would be most of the work.
const RECLAIM_EVERY: Duration = Duration::from_millis(20);
const RESCAN_AFTER: Duration = Duration::from_millis(5);

impl BudgetedManager {
    async fn acquire(&self) -> Result<(OwnedSemaphorePermit, StartSlot), ConnectError> {
        acquire(
            &self.budget,
            self.server,
            &self.router,
            self.acquire_timeout,
        )
        .await
    }
}

/// A start slot (`starts.rs`), then a permit of the server's budget. While
/// the budget is spent, an idle connection of another tenant on the server
/// is closed to give its permit back (connections returned to a pool go
/// idle, not back to the budget), until `acquire_timeout` runs out. The
/// gateway's sessions (`wire.rs`) take theirs here too. The caller holds
/// the slot while its session opens (`starts::opening`), and makes it to
/// the end (`starts::to_the_end`).
pub(super) async fn acquire(
    budget: &ServerBudget,
    server: Uuid,
    router: &Weak<RouterInner>,
    acquire_timeout: Duration,
) -> Result<(OwnedSemaphorePermit, StartSlot), ConnectError> {
    let deadline = tokio::time::Instant::now() + acquire_timeout;
    let slot = budget.starts.take(deadline).await?;
    loop {
        let permit = acquire_by(budget, server, router, deadline).await?;
        // After a shrink, a permit that comes free pays the debt first.
        if budget.take_debt() {
            permit.forget();
            continue;
        }
        return Ok((permit, slot));
    }
}

async fn acquire_by(
    budget: &ServerBudget,
    server: Uuid,
    router: &Weak<RouterInner>,
    deadline: tokio::time::Instant,
) -> Result<OwnedSemaphorePermit, ConnectError> {
    let permits = &budget.permits;
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return Ok(permit);
    }
    let _waiting = budget.wait();
    let mut arriving = true;
    loop {
        // The permits of sessions closed here go to the waiters in turn
        // (the semaphore is fair), so no waiter pays for another's close.
        let mut retry = RECLAIM_EVERY;
        match budget.reclaim_turn(arriving, RESCAN_AFTER) {
            Turn::Look(_turn, mut lacking) => {
                arriving = false;
                if let Some(router) = router.upgrade() {
                    // Waiters that came while this one looked are served too.
                    while lacking > 0 && router.close_idle_on(server, lacking) > 0 {
                        lacking = budget.lacking();
                    }
                }
            }
            // Whoever looks now may have counted the waiters before this
            // one came: look again soon.
            Turn::Busy if arriving => retry = RESCAN_AFTER / 5,
            Turn::Busy | Turn::Nothing => arriving = false,
        }
        let wait = retry.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
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

impl Manager for BudgetedManager {
    type Type = BudgetedClient;
    type Error = ConnectError;

    async fn create(&self) -> Result<BudgetedClient, ConnectError> {
        let (permit, slot) = self.acquire().await?;
        let (config, budget) = (self.config.clone(), self.budget.clone());
        // Made to the end even if nobody waits for it any more: dropped
        // mid-login, the permit would go back beside a live backend.
        super::starts::to_the_end(async move {
            let limit = config.get_connect_timeout().copied();
            let (client, connection) =
                super::starts::opening(slot, limit, config.connect_closing()).await?;
            // The permit goes back only when the server has closed the
            // session's socket (its backend has exited), not when the client
            // was dropped nor when our side of the socket closed: PostgreSQL
            // counts the backend until it is gone.
            let debt = Arc::new(AtomicU8::new(OPEN));
            let session = debt.clone();
            tokio::spawn(async move {
                let _ = connection.await;
                budget.settle(&session, permit);
            });
            ::metrics::counter!(crate::telemetry::metrics::ROUTER_SESSIONS_OPENED).increment(1);
            // The wrapper aborts the task it is given when dropped; give it
            // one that has nothing to abort, so the session closes cleanly.
            let nothing = tokio::spawn(async {});
            Ok(BudgetedClient {
                client: deadpool_postgres::ClientWrapper::new(client, nothing),
                debt,
            })
        })
        .await
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{ConnectError, RouterError, SchemaGap};
    use crate::pg::RawError;

    fn unreachable(e: ConnectError) -> RouterError {
        RouterError::ServerUnreachable(Arc::new(e))
    }

    fn refused(code: &str) -> ConnectError {
        ConnectError::Raw(RawError::Refused {
            code: code.into(),
            message: "refused".into(),
        })
    }

    #[test]
    fn only_a_refused_login_or_stray_defaults_make_the_gateway_make_a_login_again() {
        for remake in [
            refused("28P01"),
            refused("28000"),
            ConnectError::StrayDefaults,
        ] {
            let shown = remake.to_string();
            assert!(unreachable(remake).login_to_remake(), "{shown}");
        }
        // Too many clients, a database gone, a server going down, no
        // budget, a schema behind: making the login again would not help.
        for other in [
            refused("53300"),
            refused("3D000"),
            refused("57P03"),
            ConnectError::Raw(RawError::Tls),
            ConnectError::BudgetSpent,
            ConnectError::SchemaBehind(SchemaGap::AuditWritable),
        ] {
            let shown = other.to_string();
            assert!(!unreachable(other).login_to_remake(), "{shown}");
        }
        assert!(!RouterError::BudgetSpent.login_to_remake());
        assert!(!RouterError::SchemaBehind(SchemaGap::SubtenantRows).login_to_remake());
    }
}
