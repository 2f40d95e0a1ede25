//! How much a pool wants its sessions: what the budget's reclaim
//! (`reclaim.rs`) reads to choose whose idle session to close.
//!
//! A pool counts its requests (halved by the idle reaper, so that old heat
//! fades) and keeps the time of its last one and the mean gap between
//! them. The reclaim closes, first, the sessions of pools that have
//! *stopped*: silent for more than `LATE` times their mean gap (a tenant
//! whose job or burst is over); the longest silent first. Then those of the
//! pools with the fewest requests per open session, so that under a
//! budget below the active set the hot tenants keep theirs.
//!
//! Counting requests alone kept the sessions of tenants that had finished
//! over those of the tenants that took their place: when the active
//! tenants changed faster than the reaper aged the counts, every
//! transaction of the new ones found its session closed.

use std::cmp::Ordering as Order;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Silent for this many mean gaps, a pool has stopped. A pool that is
/// still working, its requests coming at random, is that late about once
/// in three thousand looks.
const LATE: u64 = 8;
/// The weight of a new gap in the mean: 1/8.
const GAP_WEIGHT: u64 = 8;

/// One pool's requests. Updated without a lock; a lost update under a
/// race only blurs the figures.
#[derive(Debug, Default)]
pub(super) struct Demand {
    /// Requests lately, halved by the reaper (`age`).
    uses: AtomicU64,
    /// Microseconds from `epoch()` to the first and the last request; 0:
    /// none yet.
    first_us: AtomicU64,
    last_us: AtomicU64,
    /// Requests ever, never aged: one more than the gaps the mean has seen.
    seen: AtomicU64,
    /// The mean gap between requests in microseconds; 0: fewer than two.
    gap_us: AtomicU64,
}

/// Where a pool stands for the reclaim; `reclaim_order` sorts the pool to
/// give up a session first to the front.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Claim {
    /// Silent for `silent`, more than `LATE` of its mean gaps.
    Stopped { silent: Duration },
    /// Still working, with this many requests lately per open session.
    Working { per_session: f64 },
}

impl Claim {
    /// Stopped pools first, the longest silent first; then working pools,
    /// the fewest requests per open session first.
    pub(super) fn reclaim_order(&self, other: &Self) -> Order {
        match (self, other) {
            (Claim::Stopped { silent: a }, Claim::Stopped { silent: b }) => b.cmp(a),
            (Claim::Stopped { .. }, Claim::Working { .. }) => Order::Less,
            (Claim::Working { .. }, Claim::Stopped { .. }) => Order::Greater,
            (Claim::Working { per_session: a }, Claim::Working { per_session: b }) => {
                a.total_cmp(b)
            }
        }
    }
}

impl Demand {
    /// Counts a request now.
    pub(super) fn used(&self) {
        self.used_at(since_epoch(Instant::now()));
    }

    fn used_at(&self, now: u64) {
        self.uses.fetch_add(1, Ordering::Relaxed);
        // 0 means "none yet", so a request at the epoch itself counts as 1.
        let now = now.max(1);
        let seen = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_us.swap(now, Ordering::Relaxed);
        if last == 0 {
            self.first_us.store(now, Ordering::Relaxed);
            return;
        }
        // The plain mean of the first gaps (one short gap must not make a
        // pool look stopped soon after), then a moving one of the same
        // weight, which the plain mean hands over to.
        let mean = if seen <= GAP_WEIGHT {
            now.saturating_sub(self.first_us.load(Ordering::Relaxed)) / (seen - 1)
        } else {
            let mean = self.gap_us.load(Ordering::Relaxed);
            (mean * (GAP_WEIGHT - 1) + now.saturating_sub(last)) / GAP_WEIGHT
        };
        self.gap_us.store(mean.max(1), Ordering::Relaxed);
    }

    /// Halves the count: the reaper's tick, so that old heat fades.
    pub(super) fn age(&self) {
        let _ = self
            .uses
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n / 2));
    }

    /// Where this pool, with `sessions` open, stands now.
    pub(super) fn claim(&self, now: Instant, sessions: usize) -> Claim {
        self.claim_at(since_epoch(now), sessions)
    }

    fn claim_at(&self, now: u64, sessions: usize) -> Claim {
        let last = self.last_us.load(Ordering::Relaxed);
        let gap = self.gap_us.load(Ordering::Relaxed);
        let silent = now.saturating_sub(last);
        // Two gaps at least, or a pool has no pace yet to be late for.
        let paced = self.seen.load(Ordering::Relaxed) > 2;
        if paced && silent > gap.saturating_mul(LATE) {
            return Claim::Stopped {
                silent: Duration::from_micros(silent),
            };
        }
        Claim::Working {
            per_session: self.uses.load(Ordering::Relaxed) as f64 / sessions.max(1) as f64,
        }
    }
}

/// The process's clock origin for `Demand`'s times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    /// Requests every `gap` ms from `start` ms, `n` of them.
    fn pool(start: u64, gap: u64, n: u64) -> Demand {
        let d = Demand::default();
        for i in 0..n {
            d.used_at((start + i * gap) * MS);
        }
        d
    }

    fn first(a: Claim, b: Claim) -> bool {
        a.reclaim_order(&b) == Order::Less
    }

    #[test]
    fn a_tenant_that_stopped_gives_up_its_session_before_one_working_now_though_it_made_more_requests(
    ) {
        // 40 requests 10 ms apart, the last 492 ms ago; 2 requests, the
        // last 2 ms ago.
        let finished = pool(10, 10, 40);
        let working = pool(880, 10, 2);
        let now = 892 * MS;
        let (finished, working) = (finished.claim_at(now, 1), working.claim_at(now, 1));
        assert_eq!(
            finished,
            Claim::Stopped {
                silent: Duration::from_millis(492)
            }
        );
        assert!(first(finished, working));
    }

    #[test]
    fn among_working_tenants_the_one_with_fewest_requests_per_session_gives_up_first() {
        // Hot: every 5 ms on 5 sessions, last 1 ms ago. Tail: every 500 ms,
        // last 100 ms ago.
        let hot = pool(10, 5, 200).claim_at(1006 * MS, 5);
        let tail = pool(10, 500, 2).claim_at(610 * MS, 1);
        assert_eq!(hot, Claim::Working { per_session: 40.0 });
        assert_eq!(tail, Claim::Working { per_session: 2.0 });
        assert!(first(tail, hot));
    }

    #[test]
    fn the_longest_silent_of_two_stopped_tenants_gives_up_first_and_a_lone_request_has_not_stopped()
    {
        let long = Claim::Stopped {
            silent: Duration::from_secs(9),
        };
        let short = Claim::Stopped {
            silent: Duration::from_secs(1),
        };
        assert!(first(long, short));
        let once = pool(100, 0, 1);
        assert_eq!(
            once.claim_at(100_000 * MS, 1),
            Claim::Working { per_session: 1.0 }
        );
    }

    #[test]
    fn the_mean_gap_follows_a_change_of_pace_and_the_reaper_halves_the_count() {
        let d = pool(10, 100, 10);
        assert_eq!(d.gap_us.load(Ordering::Relaxed), 100 * MS);
        for i in 1..=40 {
            d.used_at((910 + i * 10) * MS);
        }
        assert!(d.gap_us.load(Ordering::Relaxed) < 11 * MS);
        d.age();
        assert_eq!(d.uses.load(Ordering::Relaxed), 25);
    }
}
