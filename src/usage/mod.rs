//! Usage per tenant: requests counted in memory on each replica (with a
//! journal that survives a kill, `journal.rs`) and flushed as one row per
//! tenant and hour; storage and each database's own counters sampled from
//! PostgreSQL (`sample.rs`); quotas checked against both (`quota.rs`).
//!
//! Rules:
//! - Replicas add up: each flushes its own counts as additions, under its
//!   own `(writer, seq)` per segment, which the catalog adds once. Nothing
//!   is counted twice after a crash, and nothing a killed replica counted
//!   is lost: the next start on its data directory flushes its journal.
//! - A quota breach is recorded in the catalog; the routers of every
//!   replica hear of it (`quota:` notices) and refuse the tenant's writes.

mod journal;
mod meter;
mod quota;
mod sample;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

pub use crate::catalog::{month_of, Granularity, TopTenant, UsageMetric, UsagePoint};
pub use journal::Plane;
pub use meter::Meter;
pub use quota::QuotaStatus;

use crate::catalog::{Catalog, CatalogError};
use crate::config::UsageSettings;
use crate::domain::TenantId;
use crate::provisioner::Provisioner;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum UsageError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A database server that could not be sampled, or a journal read.
    #[error("{0}")]
    Sample(String),
    #[error("no such tenant")]
    NotFound,
}

/// The usage service: counting, flushing, sampling, reporting.
#[derive(Clone)]
pub struct Usage {
    catalog: Catalog,
    provisioner: Provisioner,
    settings: UsageSettings,
    /// Set by `serve` (`start`); a CLI process counts nothing.
    meter: Arc<std::sync::OnceLock<Meter>>,
    /// Segments closed but not yet in the catalog (it was unreachable).
    pending: Arc<Mutex<Vec<meter::Closed>>>,
}

impl Usage {
    pub fn new(catalog: Catalog, provisioner: Provisioner, settings: UsageSettings) -> Self {
        Self {
            catalog,
            provisioner,
            settings,
            meter: Arc::default(),
            pending: Arc::default(),
        }
    }

    /// Counts one request for `tenant` (a no-op before `start`).
    pub fn count(&self, tenant: TenantId, plane: Plane) {
        if let Some(meter) = self.meter.get() {
            meter.count(tenant, plane);
        }
    }

    /// Flushes what dead writers left under `<data_dir>/usage`, starts this
    /// process's meter there, and runs the flushes, samples and roll-ups
    /// until `shutdown` (then flushes once more).
    pub async fn start(
        &self,
        data_dir: &std::path::Path,
        shutdown: CancellationToken,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let root = data_dir.join("usage");
        self.adopt(&root).await;
        if self.settings.meter_requests {
            let _ = self.meter.set(Meter::open(&root)?);
        }
        let usage = self.clone();
        Ok(tokio::spawn(async move { usage.run(shutdown).await }))
    }

    async fn run(&self, shutdown: CancellationToken) {
        // Each first tick one period after the start: a replica that just
        // started has counted nothing, and the sample is the fleet's (one
        // replica takes it when it is due).
        let every = |secs: u64| {
            let period = Duration::from_secs(secs.max(1));
            tokio::time::interval_at(tokio::time::Instant::now() + period, period)
        };
        let mut flush = every(self.settings.flush_secs);
        let mut sample = every(sample::sample_tick(self.settings.sample_secs));
        let mut roll_up = every(3600);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = flush.tick() => self.flush().await,
                _ = sample.tick() => self.sample_if_due().await,
                _ = roll_up.tick() => self.roll_up().await,
            }
        }
        self.flush().await;
        if let Some(meter) = self.meter.get() {
            if self.pending.lock().expect("pending").is_empty() {
                meter.remove_if_empty();
            }
        }
    }

    /// Adds this replica's counts since the last flush to the catalog, and
    /// any earlier segment it could not add then.
    pub async fn flush(&self) {
        let Some(meter) = self.meter.get() else {
            return;
        };
        match meter.close_segments() {
            Ok(closed) => self.pending.lock().expect("pending").extend(closed),
            Err(e) => tracing::warn!(error = %e, "cannot start a new usage journal segment"),
        }
        let pending = std::mem::take(&mut *self.pending.lock().expect("pending"));
        let mut kept = Vec::new();
        for closed in pending {
            match self
                .add_segment(meter.writer, closed.seq, &closed.tally)
                .await
            {
                Ok(()) => {
                    let _ = std::fs::remove_file(&closed.path);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot flush usage to the catalog; it is kept for the next flush");
                    kept.push(closed);
                }
            }
        }
        self.pending.lock().expect("pending").extend(kept);
    }

    async fn add_segment(
        &self,
        writer: uuid::Uuid,
        seq: i64,
        tally: &journal::Tally,
    ) -> Result<(), UsageError> {
        let rows = tally.rows();
        if let Some(months) = self.catalog.flush_usage_segment(writer, seq, &rows).await? {
            self.check_requests(&months).await?;
        }
        Ok(())
    }

    /// Flushes the journals of processes that died, under their own ids.
    async fn adopt(&self, root: &std::path::Path) {
        for dead in journal::dead_writers(root) {
            let mut complete = true;
            for (seq, path) in &dead.segments {
                let flushed = match journal::read_segment(path) {
                    Ok(tally) if tally.is_empty() => Ok(()),
                    Ok(tally) => self.add_segment(dead.writer, *seq, &tally).await,
                    Err(e) => Err(UsageError::Sample(e.to_string())),
                };
                match flushed {
                    Ok(()) => {
                        let _ = std::fs::remove_file(path);
                    }
                    Err(e) => {
                        complete = false;
                        tracing::warn!(error = %e, segment = %path.display(), "cannot flush a dead replica's usage journal; the next start tries again");
                    }
                }
            }
            if complete {
                let _ = std::fs::remove_dir_all(&dead.dir);
                tracing::info!(writer = %dead.writer, "flushed the usage journal of a process that stopped without flushing");
            }
        }
    }

    async fn roll_up(&self) {
        if let Err(e) = self
            .catalog
            .roll_up_usage(self.settings.hourly_retention_days)
            .await
        {
            tracing::warn!(error = %e, "cannot roll hourly usage up into days");
        }
        if let Err(e) = self.catalog.expire_quota_breaches().await {
            tracing::warn!(error = %e, "cannot expire ended quota breaches");
        }
    }

    /// `tenant`'s usage in `[from, to)`; an empty range has none.
    pub async fn tenant_usage(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<UsagePoint>, UsageError> {
        self.catalog
            .get_tenant(tenant)
            .await?
            .ok_or(UsageError::NotFound)?;
        Ok(self
            .catalog
            .tenant_usage(tenant, from, to, granularity)
            .await?)
    }

    /// The fleet's top tenants by `metric` in `[from, to)`.
    pub async fn top(
        &self,
        metric: UsageMetric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<TopTenant>, UsageError> {
        // An empty range (`from` at or after `to`) has no usage.
        Ok(self.catalog.top_usage(metric, from, to, limit).await?)
    }
}
