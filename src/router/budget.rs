//! The connection budget: a semaphore per database server whose permits are
//! held by each session's connection task, from before it connects until
//! its socket has closed. So the open router connections to a server never
//! exceed its budget, however many tenant pools there are. `session.rs`
//! makes the sessions that hold the permits; `reclaim.rs` applies a changed
//! budget to the pools and closes idle sessions to free permits.
//!
//! An operator may change a server's budget while it serves. Growing adds
//! permits at once. Shrinking forgets the free permits and owes the rest:
//! idle sessions are closed to pay, and busy ones pay when they come back
//! (an owed permit is forgotten when its session closes, not returned).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A session's state toward the budget, shared by the session's client and
/// its connection task: `OPEN`, `PAYS` (it was closed to pay a shrunk
/// budget's debt) or `CLOSED` (its permit is settled).
pub(super) const OPEN: u8 = 0;
pub(super) const PAYS: u8 = 1;
pub(super) const CLOSED: u8 = 2;

/// One server's budget, resizable while sessions hold its permits.
pub struct ServerBudget {
    pub(super) permits: Arc<Semaphore>,
    size: AtomicUsize,
    /// Permits to forget, after a shrink, that no session has taken on yet.
    owed: AtomicUsize,
    resizing: Mutex<()>,
    /// One change applied at a time, pools included: a second caller (the
    /// change notice racing the PATCH) waits, then finds nothing to do.
    pub(super) applying: Mutex<()>,
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
    pub(super) fn take_debt(&self) -> bool {
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
    pub(super) fn collect(&self, session: &AtomicU8) -> bool {
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
    pub(super) fn settle(&self, session: &AtomicU8, permit: OwnedSemaphorePermit) {
        if session.swap(CLOSED, Ordering::AcqRel) == PAYS || self.take_debt() {
            permit.forget();
        } else {
            drop(permit);
        }
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
