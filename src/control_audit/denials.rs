//! Refused requests, counted rather than logged one by one: per minute,
//! client address, route, reason and caller, in memory, and written every
//! few seconds over a small pool of their own, so a flood of bad
//! credentials costs a few rows a minute and never competes with the
//! control plane for catalog connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use deadpool_postgres::{Pool, RecyclingMethod, Runtime};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::catalog::{Catalog, CatalogError};
use crate::domain::TenantId;

/// Connections the denial writer may hold.
const POOL_SIZE: usize = 2;

/// How often the counts are written.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// What one refused request is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DenialKey {
    pub source: String,
    /// The route pattern (`unmatched` when none matched).
    pub route: String,
    /// `unauthenticated`, `forbidden`, `cross_tenant`, `throttled`, …
    pub reason: &'static str,
    pub tenant: Option<TenantId>,
    pub user: Option<String>,
}

/// A minute's count, as `GET /v1/audit` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DenialCount {
    pub minute: DateTime<Utc>,
    pub source: String,
    pub route: String,
    pub reason: String,
    pub user_id: String,
    pub count: i64,
}

/// Denials not yet written, by the minute they happened in and their key.
type Pending = HashMap<(DateTime<Utc>, DenialKey), u64>;

#[derive(Clone)]
pub struct Denials {
    counts: Arc<Mutex<Pending>>,
    pool: Pool,
}

impl Denials {
    /// A writer over a pool of its own to the catalog's database.
    pub fn new(catalog: &Catalog) -> Result<Self, CatalogError> {
        let mut config = catalog.config().clone();
        config.application_name("tenant-plane-denials");
        let manager = config.manager(RecyclingMethod::Fast);
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()?;
        Ok(Self {
            counts: Arc::default(),
            pool,
        })
    }

    /// Counts one refused request, in memory: it cannot fail, and costs no
    /// catalog round trip.
    pub fn record(&self, key: DenialKey) {
        let minute = Utc::now()
            .duration_trunc(chrono::Duration::minutes(1))
            .unwrap_or_else(|_| Utc::now());
        ::metrics::counter!(crate::telemetry::metrics::DENIALS, "reason" => key.reason)
            .increment(1);
        let mut counts = self.counts.lock().expect("denial counts");
        *counts.entry((minute, key)).or_default() += 1;
    }

    /// Writes the counts gathered since the last write. On failure they are
    /// kept for the next one.
    pub async fn flush(&self) -> Result<u64, CatalogError> {
        let taken = std::mem::take(&mut *self.counts.lock().expect("denial counts"));
        if taken.is_empty() {
            return Ok(0);
        }
        let written = self.write(&taken).await;
        if written.is_err() {
            let mut counts = self.counts.lock().expect("denial counts");
            for (key, n) in taken {
                *counts.entry(key).or_default() += n;
            }
        }
        written
    }

    async fn write(&self, counts: &Pending) -> Result<u64, CatalogError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let upsert = tx
            .prepare_cached(
                "INSERT INTO denials (minute, source, route, reason, tenant_id, user_id, count)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (minute, source, route, reason, tenant_id, user_id)
                 DO UPDATE SET count = denials.count + EXCLUDED.count",
            )
            .await?;
        for ((minute, key), n) in counts {
            tx.execute(
                &upsert,
                &[
                    minute,
                    &key.source,
                    &key.route,
                    &key.reason,
                    &key.tenant.map_or(Uuid::nil(), |t| t.as_uuid()),
                    &key.user.as_deref().unwrap_or(""),
                    &i64::try_from(*n).unwrap_or(i64::MAX),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(counts.len() as u64)
    }

    /// Writes the counts every few seconds until `shutdown`, then once more.
    pub fn spawn_writer(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let denials = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(FLUSH_EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                if let Err(e) = denials.flush().await {
                    tracing::warn!(error = %e, "could not write denial counts; they are kept for the next try");
                }
            }
            let _ = denials.flush().await;
        })
    }

    /// A tenant's denial counts, newest first.
    pub async fn of_tenant(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> Result<Vec<DenialCount>, CatalogError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT minute, source, route, reason, user_id, count FROM denials
                  WHERE tenant_id = $1 ORDER BY minute DESC, count DESC LIMIT $2",
                &[&tenant.as_uuid(), &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DenialCount {
                minute: r.get(0),
                source: r.get(1),
                route: r.get(2),
                reason: r.get(3),
                user_id: r.get(4),
                count: r.get(5),
            })
            .collect())
    }
}
