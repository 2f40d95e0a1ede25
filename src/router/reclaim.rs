//! Keeping each server's sessions within its budget: a changed budget is
//! applied to the budget and its pools at once, and a request that finds
//! the budget spent closes another tenant's idle session to free a permit.
//!
//! Rules:
//! - A server's budget follows its `connection_budget` while it serves, on
//!   every replica, without a restart, and is resized only from a row just
//!   read from the catalog (a PATCH, a server change notice, a listener
//!   reconnect), never from a route's copy, which may be older.
//! - When a server's budget is spent, a new session is made only after an
//!   idle session of another tenant closes: those of pools that have
//!   stopped, then those of the pools with the fewest recent requests per
//!   open session (`demand.rs`), so the tenants working now and the hot
//!   ones keep theirs. Never more at a time than the waiters lack.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::budget::ServerBudget;
use super::demand::Claim;
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
            .or_insert_with(|| {
                let starting = self.settings.max_starting as usize;
                Arc::new(ServerBudget::new(self.budget_size(server), starting))
            })
            .clone()
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

    /// Closes up to `want` idle sessions on `server`, HTTP or gateway, to
    /// give their permits to waiters; says how many it closed. It takes
    /// them from the pools that have stopped, then from those with the
    /// fewest requests lately per open session (`demand.rs`), each one's
    /// longest idle first: under a budget below the active set, an LRU
    /// choice would close a hot tenant's session whenever a cold tenant
    /// came by, and a count alone would close those of the tenants working
    /// now for those of tenants that have finished. Only as many as are
    /// wanted: closing every idle session would make all tenants reconnect
    /// at once.
    pub(super) fn close_idle_on(&self, server: Uuid, want: usize) -> usize {
        let Some(budget) = self.budgets.lock().expect("budgets").get(&server).cloned() else {
            return 0;
        };
        let now = Instant::now();
        let mut idle: Vec<(Claim, Duration, Idle)> = Vec::new();
        for (_, pool) in self.pools.iter().filter(|(_, p)| p.server == server) {
            if let Some(idle_for) = longest_idle(&pool.pool) {
                let claim = pool.demand.claim(now, pool.pool.status().size);
                idle.push((claim, idle_for, Idle::Http(pool)));
            }
        }
        for (_, pool) in self.wire_pools.iter().filter(|(_, p)| p.server == server) {
            if let Some(idle_for) = longest_idle(&pool.pool) {
                let claim = pool.demand.claim(now, pool.pool.status().size);
                idle.push((claim, idle_for, Idle::Wire(pool)));
            }
        }
        idle.sort_by(|a, b| a.0.reclaim_order(&b.0).then(b.1.cmp(&a.1)));
        let mut closed = 0;
        for (_, idle_for, pool) in idle {
            if closed == want {
                break;
            }
            let done = match pool {
                Idle::Http(p) => {
                    close_one_idle(&p.pool, idle_for, |c| budget.mark_reclaimed(&c.debt))
                }
                Idle::Wire(p) => close_one_idle(&p.pool, idle_for, |s| s.reclaim(&budget)),
            };
            closed += usize::from(done);
        }
        closed
    }
}

/// A pool with an idle session.
enum Idle {
    Http(TenantPool),
    Wire(super::wire::WirePool),
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
/// `longest_idle` found, unless it was taken meanwhile) that `mark`
/// accepts (a session already closing for another reason is left).
fn close_one_idle<M: deadpool::managed::Manager>(
    pool: &deadpool::managed::Pool<M>,
    longest: Duration,
    mark: impl Fn(&M::Type) -> bool,
) -> bool {
    let mut closed = false;
    pool.retain(|session, metrics| {
        if !closed && metrics.last_used() >= longest && mark(session) {
            closed = true;
            return false;
        }
        true
    });
    closed
}
