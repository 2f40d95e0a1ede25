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
//! - A session that has begun to open is made to the end in a task of its
//!   own (`to_the_end`), whether or not its caller still waits (a request
//!   cancelled, a pool's create timeout): it is then closed like any other,
//!   and its permit goes back once its backend has exited. Dropped midway,
//!   its socket would close while its backend still logs in, or waits for
//!   a lock in the gateway's checks, and the permit would come back beside
//!   a live backend. An opening is given up only after `OPEN_LIMIT`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::session::ConnectError;

/// The longest a session's opening may take: PostgreSQL's default
/// `authentication_timeout`, past which a server ends a login itself.
pub(super) const OPEN_LIMIT: Duration = Duration::from_secs(60);

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
/// `limit` (none: until it is open), whichever comes first; gives up after
/// `OPEN_LIMIT`.
pub(super) async fn opening<T, E: Into<ConnectError>>(
    slot: StartSlot,
    limit: Option<Duration>,
    open: impl Future<Output = Result<T, E>>,
) -> Result<T, ConnectError> {
    opening_within(OPEN_LIMIT, slot, limit, open).await
}

async fn opening_within<T, E: Into<ConnectError>>(
    give_up: Duration,
    slot: StartSlot,
    limit: Option<Duration>,
    open: impl Future<Output = Result<T, E>>,
) -> Result<T, ConnectError> {
    let open = tokio::time::timeout(give_up, open);
    tokio::pin!(open);
    if let Some(limit) = limit {
        tokio::select! {
            opened = &mut open => return opened_or_stalled(opened),
            () = tokio::time::sleep(limit) => {}
        }
        drop(slot);
    }
    opened_or_stalled(open.await)
}

fn opened_or_stalled<T, E: Into<ConnectError>>(
    opened: Result<Result<T, E>, tokio::time::error::Elapsed>,
) -> Result<T, ConnectError> {
    opened
        .map_err(|_| ConnectError::Stalled)?
        .map_err(Into::into)
}

/// Runs `start` (a session's opening, and whatever must follow it before
/// the session is handed out) in a task of its own, to its end.
pub(super) async fn to_the_end<T: Send + 'static>(
    start: impl Future<Output = Result<T, ConnectError>> + Send + 'static,
) -> Result<T, ConnectError> {
    match tokio::spawn(start).await {
        Ok(made) => made,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels it.
        Err(_) => Err(ConnectError::Stopping),
    }
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
        let opened = async { opened.await.map_err(|_| ConnectError::Stopping) };
        let slow = tokio::spawn(opening(slot, Some(Duration::from_millis(20)), opened));
        // Past the limit the slot is free while the first still opens.
        let next = starts.take(far()).await.unwrap();
        assert!(!slow.is_finished());
        open.send(7).unwrap();
        assert_eq!(slow.await.unwrap().unwrap(), 7);
        let fast = opening(next, None, async { Ok::<_, ConnectError>(8) }).await;
        assert_eq!(fast.unwrap(), 8);
        assert!(starts.take(tokio::time::Instant::now()).await.is_ok());
    }

    #[tokio::test]
    async fn zero_means_one_at_a_time() {
        let starts = Starts::new(0);
        let _one = starts.take(tokio::time::Instant::now()).await.unwrap();
        let two = starts.take(tokio::time::Instant::now()).await;
        assert!(matches!(two, Err(ConnectError::BudgetSpent)));
    }

    #[tokio::test]
    async fn a_start_whose_caller_gives_up_is_still_made_to_its_end_and_then_dropped() {
        /// A session made: says so when it is dropped.
        #[derive(Debug)]
        struct Made(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Made {
            fn drop(&mut self) {
                let _ = self.0.take().map(|said| said.send(()));
            }
        }
        let (go, gate) = tokio::sync::oneshot::channel::<()>();
        let (said, dropped) = tokio::sync::oneshot::channel::<()>();
        let caller = tokio::spawn(to_the_end(async move {
            gate.await.map_err(|_| ConnectError::Stopping)?;
            Ok(Made(Some(said)))
        }));
        tokio::task::yield_now().await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        // The start goes on without its caller, and what it made is dropped
        // (a session: closed) rather than cut off halfway.
        go.send(()).expect("the start still runs");
        dropped.await.expect("the session was made, then dropped");
    }

    #[tokio::test]
    async fn an_opening_the_server_never_finishes_is_given_up_and_gives_its_slot_back() {
        let starts = Starts::new(1);
        let slot = starts.take(tokio::time::Instant::now()).await.unwrap();
        let never = std::future::pending::<Result<(), ConnectError>>();
        let give_up = Duration::from_millis(30);
        let opened = opening_within(give_up, slot, None, never).await;
        assert!(matches!(opened, Err(ConnectError::Stalled)));
        assert!(starts.take(tokio::time::Instant::now()).await.is_ok());
    }
}
