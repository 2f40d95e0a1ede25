//! The one reading of new events per process. Woken by the LISTEN session
//! (or every `IDLE_READ`, should a notice be lost), it reads the events
//! after the last one it saw, once, and hands them to every event stream in
//! memory, so a wake-up costs one catalog read however many streams follow.
//!
//! Rules:
//! - every batch says which id it follows (`after`); a stream whose last id
//!   is older missed events (it lagged, or joined while nobody followed) and
//!   reads them itself (`read_after`) before it takes batches again.
//! - with nobody following, nothing is read: the feed only moves its mark to
//!   the newest id it was told of. A stream reads its own start, so a new
//!   one misses nothing the feed skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::EventBus;
use crate::catalog::{Catalog, CatalogError, EventRecord};

/// Events read at once.
pub const BATCH: i64 = 500;
/// How often the feed reads with no notice, while anyone follows.
const IDLE_READ: Duration = Duration::from_secs(15);
/// Batches a slow stream may fall behind before it reads for itself.
const BACKLOG: usize = 256;

/// Events read for the streams in one go, after `after`.
pub struct Batch {
    pub after: i64,
    pub events: Vec<EventRecord>,
}

/// The shared feed of new events (see the module's rules).
#[derive(Clone)]
pub struct EventFeed {
    tx: broadcast::Sender<Arc<Batch>>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    /// Catalog reads of events made for streams: the feed's and catch-ups.
    reads: AtomicU64,
    /// Wake-ups the feed read for (someone was following).
    wakeups: AtomicU64,
}

impl Default for EventFeed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
            counts: Arc::default(),
        }
    }
}

impl EventFeed {
    /// New batches from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Batch>> {
        self.tx.subscribe()
    }

    /// A stream's own read of the events after `after` (its start, or what
    /// it missed), counted with the feed's.
    pub async fn read_after(
        &self,
        catalog: &Catalog,
        after: i64,
    ) -> Result<Vec<EventRecord>, CatalogError> {
        self.counts.reads.fetch_add(1, Ordering::Relaxed);
        catalog.events_after(after, BATCH).await
    }

    /// Catalog reads of events made for streams so far.
    pub fn reads(&self) -> u64 {
        self.counts.reads.load(Ordering::Relaxed)
    }

    /// Wake-ups the feed has read for so far.
    pub fn wakeups(&self) -> u64 {
        self.counts.wakeups.load(Ordering::Relaxed)
    }

    /// Follows `bus` until `shutdown`, starting after the newest event now.
    pub(super) fn spawn(
        &self,
        bus: &EventBus,
        catalog: Catalog,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let feed = self.clone();
        let mut wake = bus.subscribe();
        tokio::spawn(async move {
            let mut last = loop {
                match catalog.latest_event_id().await {
                    Ok(id) => break id,
                    Err(e) => {
                        tracing::warn!(error = %e, "the event feed cannot read the catalog; it retries")
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            };
            loop {
                let told = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    woke = wake.recv() => match woke {
                        Ok(id) => id,
                        Err(broadcast::error::RecvError::Lagged(_)) => 0,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = tokio::time::sleep(IDLE_READ) => 0,
                };
                if feed.tx.receiver_count() == 0 {
                    last = last.max(told);
                    continue;
                }
                feed.counts.wakeups.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = feed.read_all(&catalog, &mut last).await {
                    tracing::warn!(error = %e, "the event feed cannot read the catalog; it waits");
                }
            }
        })
    }

    /// Reads and hands out everything after `last`, moving it on.
    async fn read_all(&self, catalog: &Catalog, last: &mut i64) -> Result<(), CatalogError> {
        loop {
            let events = self.read_after(catalog, *last).await?;
            let Some(newest) = events.last().map(|e| e.id) else {
                return Ok(());
            };
            let full = events.len() as i64 == BATCH;
            // Nobody left is fine: the next stream reads its own start.
            let _ = self.tx.send(Arc::new(Batch {
                after: *last,
                events,
            }));
            *last = newest;
            if !full {
                return Ok(());
            }
        }
    }
}
