//! The connection budget: a semaphore per database server whose permits are
//! held by each session's connection task, from before it connects until
//! its socket has closed. So the open router connections to a server never
//! exceed its budget, however many tenant pools there are. `session.rs`
//! makes the sessions that hold the permits; `reclaim.rs` applies a changed
//! budget to the pools and closes idle sessions to free permits.
//!
//! While the budget is spent, waiters count themselves (`Waiting`), and
//! sessions closed to free a permit for them count as `reclaiming` until
//! their permit is settled: so the waiters ask `reclaim.rs` for as many
//! closes as they still lack, and no more.
//!
//! An operator may change a server's budget while it serves. Growing adds
//! permits at once. Shrinking forgets the free permits and owes the rest:
//! idle sessions are closed to pay, and busy ones pay when they come back
//! (an owed permit is forgotten when its session closes, not returned).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A session's state toward the budget, shared by the session's client and
/// its connection task: `OPEN`, `PAYS` (it was closed to pay a shrunk
/// budget's debt), `RECLAIMED` (it was closed to give its permit to a
/// waiter) or `CLOSED` (its permit is settled).
pub(super) const OPEN: u8 = 0;
pub(super) const PAYS: u8 = 1;
pub(super) const CLOSED: u8 = 2;
pub(super) const RECLAIMED: u8 = 3;

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
    /// Callers waiting for a permit now.
    waiting: AtomicUsize,
    /// Sessions closed for a waiter whose permits are not settled yet.
    reclaiming: AtomicUsize,
    /// One reclaim at a time, and when the last one looked.
    scanned: Mutex<Option<Instant>>,
    /// The sessions starting now (`starts.rs`).
    pub(super) starts: super::starts::Starts,
}

/// What a waiter may do about the idle sessions of a spent budget.
pub(super) enum Turn<'a> {
    /// Look, and close up to this many; the guard keeps others out.
    Look(MutexGuard<'a, Option<Instant>>, usize),
    /// Another caller is looking now.
    Busy,
    Nothing,
}

/// A caller's place among a budget's waiters, while it waits.
pub(super) struct Waiting<'a>(&'a ServerBudget);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ServerBudget {
    /// A budget of `size` sessions, `starting` of which may start at once.
    pub fn new(size: usize, starting: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size: AtomicUsize::new(size),
            owed: AtomicUsize::new(0),
            resizing: Mutex::new(()),
            applying: Mutex::new(()),
            waiting: AtomicUsize::new(0),
            reclaiming: AtomicUsize::new(0),
            scanned: Mutex::new(None),
            starts: super::starts::Starts::new(starting),
        }
    }

    /// Counts the caller among the waiters until the guard drops.
    pub(super) fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(self)
    }

    /// The right to look for idle sessions to close, and how many closes
    /// the waiters still lack. `Busy` while another caller is looking;
    /// `Nothing` when nothing is lacking, or when `arriving` is false and
    /// the last look was less than `again` ago (a waiter's periodic retry,
    /// which must not scan the server's pools for every waiter every time).
    pub(super) fn reclaim_turn(&self, arriving: bool, again: Duration) -> Turn<'_> {
        let Ok(mut scanned) = self.scanned.try_lock() else {
            return Turn::Busy;
        };
        let lacking = self.lacking();
        if lacking == 0 || (!arriving && scanned.is_some_and(|at| at.elapsed() < again)) {
            return Turn::Nothing;
        }
        *scanned = Some(Instant::now());
        Turn::Look(scanned, lacking)
    }

    /// Closes the waiters lack: those waiting less those already closing.
    pub(super) fn lacking(&self) -> usize {
        self.waiting
            .load(Ordering::Acquire)
            .saturating_sub(self.reclaiming.load(Ordering::Acquire))
    }

    /// Marks a live session as closed for a waiter; the caller then closes
    /// it. A session closing for another reason is not counted.
    pub(super) fn mark_reclaimed(&self, session: &AtomicU8) -> bool {
        if session
            .compare_exchange(OPEN, RECLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.reclaiming.fetch_add(1, Ordering::AcqRel);
        true
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
        let was = session.swap(CLOSED, Ordering::AcqRel);
        if was == PAYS || self.take_debt() {
            permit.forget();
        } else {
            drop(permit);
        }
        // After the permit is back: a waiter's next look then finds it.
        if was == RECLAIMED {
            self.reclaiming.fetch_sub(1, Ordering::AcqRel);
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
        let budget = ServerBudget::new(10, 2);
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
        let budget = ServerBudget::new(4, 2);
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
        let budget = ServerBudget::new(10, 2);
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
    fn waiters_lack_only_the_closes_not_yet_started_and_one_caller_looks_at_a_time() {
        let budget = ServerBudget::new(2, 2);
        let open = sessions(&budget, 2);
        let (first, second) = (budget.wait(), budget.wait());
        assert_eq!(budget.lacking(), 2);
        let Turn::Look(guard, lacking) = budget.reclaim_turn(true, Duration::from_secs(60)) else {
            panic!("the first caller looks");
        };
        assert_eq!(lacking, 2);
        assert!(matches!(
            budget.reclaim_turn(true, Duration::ZERO),
            Turn::Busy
        ));
        // One idle session is closed for them: one close is still lacking.
        let mut open = open.into_iter();
        let (closing, permit) = open.next().unwrap();
        assert!(budget.mark_reclaimed(&closing));
        assert!(!budget.mark_reclaimed(&closing), "counted twice");
        assert_eq!(budget.lacking(), 1);
        drop(guard);
        // A retry soon after a look does not look again; an arrival does.
        assert!(matches!(
            budget.reclaim_turn(false, Duration::from_secs(60)),
            Turn::Nothing
        ));
        assert!(matches!(
            budget.reclaim_turn(true, Duration::from_secs(60)),
            Turn::Look(_, 1)
        ));
        // Its permit settles: a waiter takes it and leaves.
        budget.settle(&closing, permit);
        assert_eq!(budget.permits.available_permits(), 1);
        drop(first);
        assert_eq!(budget.lacking(), 1, "the second waiter still lacks one");
        drop(second);
        assert_eq!(budget.lacking(), 0);
        assert!(matches!(
            budget.reclaim_turn(true, Duration::ZERO),
            Turn::Nothing
        ));
        drop(open);
    }

    #[test]
    fn a_budget_shrunk_with_nothing_held_is_smaller_at_once() {
        let budget = ServerBudget::new(10, 2);
        assert!(!budget.resize(3));
        let held = hold(&budget, 3);
        assert!(budget.permits.clone().try_acquire_owned().is_err());
        assert_eq!(budget.open(), held.len());
    }
}
