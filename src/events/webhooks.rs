//! Outbound webhooks: each event of `WEBHOOK_EVENTS` is queued as a
//! delivery to the installation's endpoint and POSTed as JSON, signed with
//! HMAC-SHA256 of the secret (`Tenant-Plane-Signature: t=<unix>,v1=<hex>`
//! over `<t>.<body>`, so a receiver can also refuse replays). A failure is
//! retried with exponential backoff (1 s doubling to an hour) until
//! `webhooks.max_attempts`; every attempt is in the delivery log. Replicas
//! share the queue: a claim moves the delivery's next attempt ahead, so
//! one replica sends it at a time.

use std::time::Duration;

use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use super::EventBus;
use crate::catalog::{Catalog, CatalogError, EventRecord};
use crate::config::WebhookSettings;

/// The events sent to the endpoint.
pub const WEBHOOK_EVENTS: [&str; 9] = [
    "tenant.created",
    "tenant.suspended",
    "tenant.deleted",
    "tenant.purged",
    // A tenant found drifted, once per drift (drift plumbing).
    "tenant.drifted",
    // A tenant at 80 % of a quota, once per quota and month (`usage`).
    "tenant.quota_warning",
    "operation.succeeded",
    "operation.failed",
    "migration_run.finished",
];

/// How long a claimed delivery is left to its sender before another
/// replica may try it (longer than a request can take).
const CLAIM: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the queue is looked at when no event wakes the sender.
const POLL: Duration = Duration::from_secs(1);

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &str, unix: i64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{unix}.").as_bytes());
    mac.update(body);
    format!("t={unix},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Clone)]
pub struct Webhooks {
    catalog: Catalog,
    url: String,
    secret: SecretString,
    max_attempts: u32,
    client: reqwest::Client,
    /// Events up to this one are not sent (they happened before the first
    /// start with webhooks configured).
    start: i64,
}

impl Webhooks {
    /// `None` when no endpoint is configured. Read before the service
    /// takes requests, so every event from then on is sent.
    pub async fn new(
        catalog: Catalog,
        settings: &WebhookSettings,
    ) -> Result<Option<Self>, CatalogError> {
        let (Some(url), Some(secret)) = (settings.url.clone(), settings.secret.clone()) else {
            return Ok(None);
        };
        let start = catalog.latest_event_id().await?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("tenant-plane/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client builds");
        Ok(Some(Self {
            catalog,
            url,
            secret,
            max_attempts: settings.max_attempts.max(1),
            client,
            start,
        }))
    }

    /// Sends until `shutdown`: woken by each event, and every `POLL` for
    /// retries that came due. Events from before webhooks were first
    /// configured are not sent.
    pub fn spawn(self, bus: &EventBus, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let mut wake = bus.subscribe();
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.send_due(self.start).await {
                    tracing::warn!(error = %e, "webhook pass failed; will retry");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = wake.recv() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        })
    }

    /// Queues new events, then sends every delivery that is due.
    pub async fn send_due(&self, start: i64) -> Result<(), CatalogError> {
        self.catalog
            .queue_deliveries(&self.url, &WEBHOOK_EVENTS, start)
            .await?;
        while let Some((delivery, event)) = self.catalog.claim_delivery(&self.url, CLAIM).await? {
            let (status, error) = self.post(&event, delivery.id).await;
            let delivered = error.is_none();
            let retry_at =
                (!delivered && (delivery.attempts as u32) < self.max_attempts).then(|| {
                    let backoff = 1u64 << delivery.attempts.clamp(0, 12);
                    chrono::Utc::now() + chrono::Duration::seconds(backoff.min(3600) as i64)
                });
            if !delivered {
                tracing::warn!(delivery = delivery.id, event = event.id, attempts = delivery.attempts, error = ?error, "webhook delivery failed");
            }
            self.catalog
                .record_delivery(delivery.id, delivered, status, error.as_deref(), retry_at)
                .await?;
        }
        Ok(())
    }

    /// One attempt: the receiver's status, and what went wrong (if it did).
    async fn post(&self, event: &EventRecord, delivery: i64) -> (Option<i32>, Option<String>) {
        let body = serde_json::to_vec(event).expect("events serialise");
        let signature = sign(
            self.secret.expose_secret(),
            chrono::Utc::now().timestamp(),
            &body,
        );
        let sent = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Tenant-Plane-Event", &event.kind)
            .header("Tenant-Plane-Delivery", delivery.to_string())
            .header("Tenant-Plane-Signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                (Some(i32::from(response.status().as_u16())), None)
            }
            Ok(response) => (
                Some(i32::from(response.status().as_u16())),
                Some(format!("the receiver answered {}", response.status())),
            ),
            Err(e) => (None, Some(format!("{e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_the_time_and_the_body() {
        let a = sign("0123456789abcdef", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="), "{a}");
        assert_eq!(a, sign("0123456789abcdef", 1_700_000_000, b"{}"));
        assert_ne!(a, sign("0123456789abcdef", 1_700_000_001, b"{}"));
        assert_ne!(a, sign("0123456789abcdef", 1_700_000_000, b"{ }"));
        assert_ne!(a, sign("fedcba9876543210", 1_700_000_000, b"{}"));
    }
}
