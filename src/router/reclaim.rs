//! Keeping each server's sessions within its budget: a changed budget is
//! applied to the budget and its pools at once, and a request that finds
//! the budget spent closes another tenant's idle session to free a permit.
//!
//! Rules:
//! - A server's budget follows its `connection_budget` while it serves, on
//!   every replica, without a restart, and is resized only from a row just
//!   read from the catalog (a PATCH, a server change notice, a listener
//!   reconnect), never from a route's copy, which may be older.
//! - When a server's budget is spent, a new session is made only after one
//!   idle session of another tenant closes: the one whose pool served the
//!   fewest recent requests per open session, so the hot tenants keep
//!   theirs. Never more than one at a time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::budget::ServerBudget;
use super::{RouterInner, TenantPool};
use crate::directory::DbServer;

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
        for (_, pool) in self
            .wire_pools
            .iter()
            .filter(|(_, p)| p.server == server.id)
        {
            pool.pool.resize(pool.tier_size.min(size));
            if owed {
                pool.pool.retain(|session, _| !session.pays(&budget));
            }
        }
    }

    /// Closes one idle connection on `server`, giving its permit to a
    /// waiter: one of the tenant whose pool served the fewest requests
    /// lately per open session (its longest idle), so that under a budget
    /// below the active set the hot tenants keep their sessions; an LRU
    /// choice would close them whenever a cold tenant came by. Ties go to
    /// the longest idle. One at a time: closing every idle connection would
    /// make all tenants reconnect at once.
    pub(super) fn close_idle_on(&self, server: Uuid) -> bool {
        let mut victim: Option<(TenantPool, f64, Duration)> = None;
        for (_, pool) in self.pools.iter().filter(|(_, p)| p.server == server) {
            let Some(idle_for) = longest_idle(&pool.pool) else {
                continue;
            };
            let size = pool.pool.status().size;
            let per_session = pool.uses.load(Ordering::Relaxed) as f64 / size.max(1) as f64;
            let better = victim.as_ref().is_none_or(|(_, fewest, longest)| {
                per_session < *fewest || (per_session == *fewest && idle_for > *longest)
            });
            if better {
                victim = Some((pool, per_session, idle_for));
            }
        }
        match victim {
            Some((pool, _, longest)) => close_one_idle(&pool.pool, longest),
            None => self.close_idle_wire_on(server),
        }
    }
}

impl RouterInner {
    /// Closes the longest idle gateway session on `server`, when no HTTP
    /// pool had an idle one to give.
    fn close_idle_wire_on(&self, server: Uuid) -> bool {
        let mut longest: Option<(super::wire::WirePool, Duration)> = None;
        for (_, pool) in self.wire_pools.iter().filter(|(_, p)| p.server == server) {
            let Some(idle_for) = longest_idle(&pool.pool) else {
                continue;
            };
            if longest.as_ref().is_none_or(|(_, l)| idle_for > *l) {
                longest = Some((pool, idle_for));
            }
        }
        longest.is_some_and(|(pool, idle_for)| close_one_idle(&pool.pool, idle_for))
    }
}

/// How long the longest idle session of `pool` has been idle; `None` when
/// none is. Read with `retain`, which visits exactly the idle sessions:
/// `status().available` counts a caller still creating a session as using
/// one, so a session returned meanwhile would look busy, and a budget held
/// by such sessions would never be reclaimed.
fn longest_idle<M: deadpool::managed::Manager>(
    pool: &deadpool::managed::Pool<M>,
) -> Option<Duration> {
    let mut longest = None;
    pool.retain(|_, metrics| {
        longest = Some(longest.unwrap_or(Duration::ZERO).max(metrics.last_used()));
        true
    });
    longest
}

/// Closes one idle session of `pool` idle for at least `longest` (the one
/// `longest_idle` found, unless it was taken meanwhile).
fn close_one_idle<M: deadpool::managed::Manager>(
    pool: &deadpool::managed::Pool<M>,
    longest: Duration,
) -> bool {
    let mut closed = false;
    pool.retain(|_, metrics| {
        if !closed && metrics.last_used() >= longest {
            closed = true;
            return false;
        }
        true
    });
    closed
}
