//! The event log and the webhook delivery log as the API reads them: the
//! newest event's id, what a stream missed, and a page of deliveries.
//! Queries only; streams take new events from the process's one feed.

use crate::catalog::{Catalog, CatalogError};

use super::EventFeed;

pub use crate::catalog::{DeliveryRecord, EventRecord};

#[derive(Clone)]
pub struct EventLog {
    catalog: Catalog,
}

impl EventLog {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    /// The newest event's id (0: none yet).
    pub async fn latest_id(&self) -> Result<i64, CatalogError> {
        self.catalog.latest_event_id().await
    }

    /// The events after `after`, as a stream reads them for its start or
    /// for what it missed (counted with `feed`'s reads).
    pub async fn read_after(
        &self,
        feed: &EventFeed,
        after: i64,
    ) -> Result<Vec<EventRecord>, CatalogError> {
        feed.read_after(&self.catalog, after).await
    }

    /// Deliveries in `state` (all when `None`) before id `before`, newest
    /// first, at most `limit`.
    pub async fn deliveries(
        &self,
        state: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, CatalogError> {
        self.catalog.list_deliveries(state, before, limit).await
    }
}
