//! Each logged-in client's watch: the backend serving its transaction (for
//! cancel requests), and where the transaction stands, so that the tier's
//! statement and idle-in-transaction timeouts hold even when the client
//! turned PostgreSQL's own off (`SET LOCAL statement_timeout = 0`).
//!
//! Rules:
//! - The relay only stores atomics on its path (no timer per transaction);
//!   one watchdog per gateway looks at every client a few times a second.
//! - PostgreSQL's own timeouts fire first: the watchdog acts `GRACE` later,
//!   so a client that kept them sees PostgreSQL's errors.
//! - A statement past its limit is cancelled, as a client's cancel request
//!   would; a transaction idle past its limit loses its connection (the
//!   relay ends it and closes the session, which rolls it back).
//! - So does one still waiting a limit after its cancel: the server was not
//!   running a statement of the client's, but waiting for the client, which
//!   sent no `Sync` (so PostgreSQL's idle timeout never started) and holds
//!   its transaction, and its locks, open.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::pg::CancelTarget;

/// How long after the limit the watchdog acts.
pub(super) const GRACE: Duration = Duration::from_millis(250);

/// How often the watchdog looks.
const EVERY: Duration = Duration::from_millis(100);

/// No transaction.
const OUT: u8 = 0;
/// The server has work of the client's it has not answered in full.
const BUSY: u8 = 1;
/// Inside a transaction, waiting for the client's next message.
const WAITING: u8 = 2;

/// One client's watch.
pub(crate) struct Watch {
    /// The backend serving the client's transaction, while one does.
    pub target: Mutex<Option<Arc<CancelTarget>>>,
    phase: AtomicU8,
    /// When the phase began, in ms since `epoch`.
    since: AtomicU64,
    /// The limits of the transaction's tier, in ms.
    statement_ms: AtomicU64,
    idle_ms: AtomicU64,
    epoch: Instant,
    /// Whether a cancel was sent since the phase last began.
    cancelled: AtomicBool,
    /// Whether a cancel sent a limit ago changed nothing (`look`).
    stuck: AtomicBool,
    /// Told when the client idled past its limit inside a transaction, or
    /// is stuck.
    pub idled_out: Notify,
}

impl Watch {
    pub(super) fn new(epoch: Instant) -> Self {
        Self {
            target: Mutex::default(),
            phase: AtomicU8::new(OUT),
            since: AtomicU64::new(0),
            statement_ms: AtomicU64::new(u64::MAX),
            idle_ms: AtomicU64::new(u64::MAX),
            epoch,
            cancelled: AtomicBool::new(false),
            stuck: AtomicBool::new(false),
            idled_out: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A transaction begins on `target` under these limits.
    pub(super) fn begin(&self, target: Option<Arc<CancelTarget>>, statement: u64, idle: u64) {
        *self.target.lock().expect("watch") = target;
        self.statement_ms.store(statement, Ordering::Relaxed);
        self.idle_ms.store(idle, Ordering::Relaxed);
        self.busy();
    }

    /// The server has work to answer (from now on, or again).
    pub(super) fn busy(&self) {
        self.since.store(self.now_ms(), Ordering::Relaxed);
        self.cancelled.store(false, Ordering::Relaxed);
        self.stuck.store(false, Ordering::Relaxed);
        self.phase.store(BUSY, Ordering::Release);
    }

    /// Inside a transaction, the client's turn.
    pub(super) fn waiting(&self) {
        self.since.store(self.now_ms(), Ordering::Relaxed);
        self.cancelled.store(false, Ordering::Relaxed);
        self.stuck.store(false, Ordering::Relaxed);
        self.phase.store(WAITING, Ordering::Release);
    }

    /// Whether a cancel sent a limit ago left the transaction where it was.
    pub(super) fn stuck(&self) -> bool {
        self.stuck.load(Ordering::Acquire)
    }

    pub(super) fn is_waiting(&self) -> bool {
        self.phase.load(Ordering::Acquire) == WAITING
    }

    /// The transaction ended.
    pub(super) fn end(&self) {
        self.phase.store(OUT, Ordering::Release);
        *self.target.lock().expect("watch") = None;
    }

    /// Whether the client has idled past its limit inside a transaction.
    pub(super) fn idled_too_long(&self) -> bool {
        self.is_waiting() && self.overdue(&self.idle_ms)
    }

    fn overdue(&self, limit: &AtomicU64) -> bool {
        let waited = self
            .now_ms()
            .saturating_sub(self.since.load(Ordering::Relaxed));
        let limit = limit.load(Ordering::Relaxed);
        limit != 0 && waited > limit.saturating_add(GRACE.as_millis() as u64)
    }

    /// Acts on a client past a limit: cancels its statement (once a limit,
    /// the wait starting over) or tells its relay it idled out.
    fn look(&self) {
        match self.phase.load(Ordering::Acquire) {
            BUSY if self.overdue(&self.statement_ms) => {
                self.since.store(self.now_ms(), Ordering::Relaxed);
                if self.cancelled.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "a gateway transaction waited a limit past its cancel; ending it"
                    );
                    self.stuck.store(true, Ordering::Release);
                    self.idled_out.notify_one();
                    return;
                }
                let target = self.target.lock().expect("watch").clone();
                if let Some(target) = target {
                    tracing::info!(
                        "a gateway statement ran past its tier's timeout; cancelling it"
                    );
                    tokio::spawn(async move {
                        let _ = target.cancel().await;
                    });
                }
            }
            WAITING if self.overdue(&self.idle_ms) => self.idled_out.notify_one(),
            _ => {}
        }
    }
}

/// Looks at every logged-in client until the gateway's runtime ends.
pub(super) async fn watchdog(shared: Arc<super::Shared>) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let watches: Vec<Arc<Watch>> = shared
            .cancels
            .lock()
            .expect("cancel keys")
            .values()
            .cloned()
            .collect();
        for watch in watches {
            watch.look();
        }
    }
}
