//! `events` (written by the catalog's own triggers, see V9) and
//! `webhook_deliveries`: reading events after an id, and the delivery log
//! with its claims and retries.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Catalog, CatalogError};

/// The channel the event triggers notify (the payload is the event id).
pub const EVENTS_CHANNEL: &str = "tenant_plane_events";

/// One event, as an event stream's `data:` line and a webhook's body carry it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// Increasing; an SSE client resumes after it (`Last-Event-ID`).
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `tenant.created`, `tenant.suspended`, `operation.succeeded`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant_id: Option<Uuid>,
    pub operation_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: i64,
    #[serde(rename = "event_type")]
    pub event_kind: String,
    pub url: String,
    /// pending, delivered or failed (out of attempts).
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const EVENT_COLUMNS: &str = "id, at, type, tenant_id, operation_id, data";
const DELIVERY_COLUMNS: &str = "d.id, d.event_id, e.type, d.url, d.state, d.attempts, \
     d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.delivered_at";

fn event_from_row(r: &tokio_postgres::Row) -> EventRecord {
    EventRecord {
        id: r.get(0),
        at: r.get(1),
        kind: r.get(2),
        tenant_id: r.get(3),
        operation_id: r.get(4),
        data: r.get(5),
    }
}

fn delivery_from_row(r: &tokio_postgres::Row) -> DeliveryRecord {
    DeliveryRecord {
        id: r.get(0),
        event_id: r.get(1),
        event_kind: r.get(2),
        url: r.get(3),
        state: r.get(4),
        attempts: r.get(5),
        next_attempt_at: r.get(6),
        last_status: r.get(7),
        last_error: r.get(8),
        created_at: r.get(9),
        delivered_at: r.get(10),
    }
}

impl Catalog {
    /// Events after `after`, oldest first.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>, CatalogError> {
        self.read_all(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"),
            &[&after, &limit],
            event_from_row,
        )
        .await
    }

    /// The newest event's id (0 with none).
    pub async fn latest_event_id(&self) -> Result<i64, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_one("SELECT coalesce(max(id), 0) FROM events", &[])
            .await?;
        Ok(row.get(0))
    }

    /// Queues a delivery to `url` of each event of `kinds` after the last
    /// one queued for it (after `start` when none was); returns how many.
    pub async fn queue_deliveries(
        &self,
        url: &str,
        kinds: &[&str],
        start: i64,
    ) -> Result<u64, CatalogError> {
        let client = self.pool().get().await?;
        Ok(client
            .execute(
                "INSERT INTO webhook_deliveries (event_id, url)
                 SELECT e.id, $1 FROM events e
                  WHERE e.id > coalesce((SELECT max(event_id) FROM webhook_deliveries WHERE url = $1), $3)
                    AND e.type = ANY($2)
                  ORDER BY e.id
                 ON CONFLICT (event_id, url) DO NOTHING",
                &[&url, &kinds, &start],
            )
            .await?)
    }

    /// Claims a delivery that is due: its next attempt moves `lease` ahead,
    /// so no other replica sends it meanwhile.
    pub async fn claim_delivery(
        &self,
        url: &str,
        lease: std::time::Duration,
    ) -> Result<Option<(DeliveryRecord, EventRecord)>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE webhook_deliveries SET attempts = attempts + 1,
                        next_attempt_at = now() + make_interval(secs => $2)
                  WHERE id = (SELECT id FROM webhook_deliveries
                               WHERE url = $1 AND state = 'pending' AND next_attempt_at <= now()
                               ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
                  RETURNING id",
                &[&url, &lease.as_secs_f64()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.get(0);
        let row = client
            .query_one(
                &format!(
                    "SELECT {DELIVERY_COLUMNS}, e.at, e.tenant_id, e.operation_id, e.data
                       FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1"
                ),
                &[&id],
            )
            .await?;
        let delivery = delivery_from_row(&row);
        let event = EventRecord {
            id: delivery.event_id,
            at: row.get(11),
            kind: delivery.event_kind.clone(),
            tenant_id: row.get(12),
            operation_id: row.get(13),
            data: row.get(14),
        };
        Ok(Some((delivery, event)))
    }

    /// Records an attempt's outcome: delivered, retried at `retry_at`, or
    /// (with no `retry_at`) given up.
    pub async fn record_delivery(
        &self,
        id: i64,
        delivered: bool,
        status: Option<i32>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), CatalogError> {
        let state = match (delivered, retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE webhook_deliveries SET state = $2, last_status = $3, last_error = $4,
                        next_attempt_at = coalesce($5, next_attempt_at),
                        delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
                  WHERE id = $1",
                &[&id, &state, &status, &error, &retry_at],
            )
            .await?;
        Ok(())
    }

    /// The delivery log, newest first.
    pub async fn list_deliveries(
        &self,
        state: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
                  WHERE ($1::text IS NULL OR d.state = $1) AND ($2::bigint IS NULL OR d.id < $2)
                  ORDER BY d.id DESC LIMIT $3"
            ),
            &[&state, &before, &limit],
            delivery_from_row,
        )
        .await
    }
}
