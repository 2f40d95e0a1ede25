//! Sessions starting on a server: at most `router.max_starting` at once,
//! HTTP and gateway together; the rest wait their turn, in order.
//!
//! Why: a backend's start costs the server milliseconds of CPU, and
//! against a budget below the tenants at work every start also closes
//! another tenant's idle session (`reclaim.rs`). Unbounded, a crowd of
//! tenants without a session started at once, took the CPU from the
//! transactions of the tenants that had one, and closed the hot tenants'
//! sessions, whose next transactions started backends in turn. Measured
//! (`docs/BENCHMARKS.md`, gateway, Zipf over 300 tenants, budget 50): 453
//! transactions a second with every start at once, about 1,470 with one
//! or two at a time.
//!
//! Rules:
//! - A session takes its start slot before its budget permit (so an idle
//!   session is closed for it only when it can start now), and holds it
//!   while it opens (`opening`): connected, TLS, authenticated. The
//!   gateway's checks come after, so a check waiting for a revert's lock
//!   holds no slot.
//! - A session holds its slot for at most the connect timeout: one that
//!   takes longer (a stalled server, a slow login) gives it back and goes
//!   on opening without it, so it cannot hold every start up.
//! - The wait for a slot counts against the acquire timeout, as the wait
//!   for a permit does.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::session::ConnectError;

/// One server's start slots.
#[derive(Debug)]
pub(super) struct Starts {
    slots: Arc<Semaphore>,
}

/// A session's right to start, until it is made.
pub(super) type StartSlot = OwnedSemaphorePermit;

impl Starts {
    pub(super) fn new(at_once: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(at_once.max(1))),
        }
    }

    /// Waits for a slot until `deadline`; `BudgetSpent` past it.
    pub(super) async fn take(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<StartSlot, ConnectError> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(ConnectError::BudgetSpent),
        }
    }
}

/// Opens a session with `open`, holding `slot` until it is open or for
/// `limit` (none: until it is open), whichever comes first.
pub(super) async fn opening<F: Future>(
    slot: StartSlot,
    limit: Option<Duration>,
    open: F,
) -> F::Output {
    let Some(limit) = limit else {
        return open.await;
    };
    tokio::pin!(open);
    tokio::select! {
        opened = &mut open => return opened,
        () = tokio::time::sleep(limit) => {}
    }
    drop(slot);
    open.await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn at_most_the_set_number_start_at_once_and_the_next_one_waits_its_turn_or_its_deadline()
    {
        let starts = Arc::new(Starts::new(2));
        let later = || tokio::time::Instant::now() + Duration::from_secs(1);
        let first = starts.take(later()).await.unwrap();
        let _second = starts.take(later()).await.unwrap();
        // A third waits: past its deadline, the budget counts as spent.
        let third = starts.take(tokio::time::Instant::now() + Duration::from_millis(50));
        assert!(matches!(third.await, Err(ConnectError::BudgetSpent)));
        // A slot given back goes to the one waiting.
        let waiting = tokio::spawn({
            let starts = starts.clone();
            async move { starts.take(later()).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        assert!(waiting.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn an_opening_that_takes_longer_than_its_limit_gives_its_slot_back_and_goes_on() {
        let starts = Arc::new(Starts::new(1));
        let far = || tokio::time::Instant::now() + Duration::from_secs(5);
        let slot = starts.take(far()).await.unwrap();
        let (open, opened) = tokio::sync::oneshot::channel::<u8>();
        let slow = tokio::spawn(opening(slot, Some(Duration::from_millis(20)), opened));
        // Past the limit the slot is free while the first still opens.
        let next = starts.take(far()).await.unwrap();
        assert!(!slow.is_finished());
        open.send(7).unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), 7);
        let fast = opening(next, None, async { 8 }).await;
        assert_eq!(fast, 8);
        assert!(starts.take(tokio::time::Instant::now()).await.is_ok());
    }

    #[tokio::test]
    async fn zero_means_one_at_a_time() {
        let starts = Starts::new(0);
        let _one = starts.take(tokio::time::Instant::now()).await.unwrap();
        let two = starts.take(tokio::time::Instant::now()).await;
        assert!(matches!(two, Err(ConnectError::BudgetSpent)));
    }
}
