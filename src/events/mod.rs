//! Events as they happen: the catalog's triggers record every tenant and
//! operation state change and announce it on `tenant_plane_events`; one
//! session per process LISTENs there and wakes the event feed (`feed.rs`)
//! and the webhook sender (`webhooks.rs`). The feed reads new events once
//! per wake-up and hands them to every SSE stream in memory; the sender
//! reads what it delivers itself. Both read after the last id they saw, so
//! a missed notice costs nothing but a little latency.
//!
//! Rule: a state change and its event commit in one transaction (the
//! trigger), so no writer, replica or CLI, can change a tenant's or an
//! operation's state without its event; a NOTIFY only wakes the readers.

mod feed;
mod log;
mod webhooks;

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

pub use feed::{Batch, EventFeed};
pub use log::{DeliveryRecord, EventLog, EventRecord};
pub use webhooks::{sign, Webhooks, WEBHOOK_EVENTS};

use crate::catalog::EVENTS_CHANNEL;

/// Wakes whoever follows events: the payload is the newest event id seen
/// (0 after a reconnect, when notices may have been missed).
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<i64>,
    feed: EventFeed,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            feed: EventFeed::default(),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.tx.subscribe()
    }

    /// New events, read once per wake-up for every stream.
    pub fn feed(&self) -> &EventFeed {
        &self.feed
    }

    /// Reads new events for the feed until `shutdown`.
    pub fn spawn_feed(
        &self,
        catalog: crate::catalog::Catalog,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        self.feed.spawn(self, catalog, shutdown)
    }

    /// LISTENs on the catalog until `shutdown`, reconnecting with backoff.
    pub fn spawn_listener(
        &self,
        catalog: crate::pg::PgConfig,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    result = listen_once(&tx, &catalog) => match result {
                        Ok(()) => backoff = Duration::from_millis(100),
                        Err(e) => tracing::warn!(error = %e, "event listener lost its session; reconnecting"),
                    },
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        })
    }
}

async fn listen_once(
    tx: &broadcast::Sender<i64>,
    catalog: &crate::pg::PgConfig,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = catalog.connect().await?;
    let (notices, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if notices
                        .send(n.payload().parse::<i64>().unwrap_or(0))
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}"))
        .await?;
    // Whatever happened before LISTEN took effect: followers look again.
    let _ = tx.send(0);
    while let Some(id) = rx.recv().await {
        // Nobody listening is fine: the next follower reads from the catalog.
        let _ = tx.send(id);
    }
    drop(client);
    driver.await.unwrap_or(Ok(()))
}
