//! Makes observed state match the catalog's intent. It takes over the
//! operations other processes left (their owner died, lost its lease, or
//! went silent past `reconciler.stale_after_secs`) and finishes or undoes
//! them: at start-up, before the listener serves, and then every
//! `TAKEOVER_EVERY`. Every `reconciler.interval_secs` it also purges
//! soft-deleted tenants whose retention has run out and releases
//! idempotency keys of requests that died, takes the scheduled backups
//! that are due and prunes the backups retention does not keep. It acts
//! only on operation records, each under a lease it claimed.
//!
//! Rules:
//! - A retention purge checks its condition again on the tenant as read
//!   under the tenant's lock (`purge_expired`), so a tenant restored, or
//!   purged, since the listing is left alone.
//! - It prunes audit events, denial counts, finished idempotency keys,
//!   operations and fleet-run ledgers past their retention, in batches
//!   (`catalog::retention`).

mod commands;
mod copies;
mod doctor;
mod repair;

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use doctor::{
    DoctorMode, DoctorReport, ForeignObject, MissingDatabase, OrphanObject, QuarantinedDatabase,
};

use crate::catalog::{OpKind, Operation, Pruned, Retention};
use crate::config::{BackupSettings, ReconcilerSettings, RetentionSettings};
use crate::domain::TenantId;
use crate::fleet::Fleet;
use crate::tenants::{Conversions, Tenants, TenantsError, Transition};

/// How often a replica looks for operations whose owner died. One query;
/// a dead owner's lock is free at once, so this bounds the takeover time.
const TAKEOVER_EVERY: Duration = Duration::from_secs(2);

/// Operations resumed at once by one pass.
const RESUME_CONCURRENCY: usize = 4;

#[derive(Clone)]
pub struct Reconciler {
    tenants: Tenants,
    fleet: Fleet,
    stale_after: Duration,
    retention_days: u32,
    keep: Retention,
    backups: BackupSettings,
    /// Resumes drift scans (drift plumbing); `None` leaves them to a peer.
    drift: Option<crate::drift::Scans>,
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct PassReport {
    pub resumed: Vec<Uuid>,
    pub failed: Vec<(Uuid, String)>,
    pub purged: Vec<TenantId>,
    /// Idempotency keys of requests that died before answering.
    pub expired_keys: u64,
    /// Rows past their retention.
    pub pruned: Pruned,
    /// Tenants backed up on schedule, and scheduled backups that failed.
    pub backed_up: Vec<TenantId>,
    pub backups_failed: Vec<(TenantId, String)>,
    /// Backups retention removed from the location.
    pub backups_pruned: u64,
    /// The base backup of the embedded cluster taken (`full`, `diff`), or
    /// why it failed.
    pub base_backup: Option<String>,
    /// Tenant roles that still logged in, made groups (`tenants::Conversions`).
    pub logins: Conversions,
}

impl PassReport {
    fn is_empty(&self) -> bool {
        self.resumed.is_empty()
            && self.failed.is_empty()
            && self.purged.is_empty()
            && self.expired_keys == 0
            && self.pruned.is_empty()
            && self.backed_up.is_empty()
            && self.backups_failed.is_empty()
            && self.backups_pruned == 0
            && self.base_backup.is_none()
            && self.logins.converted.is_empty()
            && self.logins.failed.is_empty()
    }
}

impl Reconciler {
    pub fn new(
        tenants: Tenants,
        fleet: Fleet,
        settings: &ReconcilerSettings,
        retention_days: u32,
        retention: &RetentionSettings,
        backups: &BackupSettings,
    ) -> Self {
        let day = Duration::from_secs(24 * 3600);
        Self {
            tenants,
            fleet,
            stale_after: Duration::from_secs(settings.stale_after_secs),
            retention_days,
            keep: Retention {
                audit: day * retention.audit_days,
                idempotency: Duration::from_secs(3600) * retention.idempotency_hours,
                operations: day * retention.operations_days,
            },
            backups: backups.clone(),
            drift: None,
        }
    }

    /// Takes over drift scans too, with `scans` (drift plumbing).
    pub fn with_drift_scans(mut self, scans: crate::drift::Scans) -> Self {
        self.drift = Some(scans);
        self
    }

    /// Takes over abandoned operations every `TAKEOVER_EVERY`, and runs a
    /// whole pass every `interval`, until `shutdown` is cancelled. The
    /// start-up pass is the caller's.
    pub fn spawn(
        self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let backups = tokio::spawn(self.clone().backup_loop(interval, shutdown.clone()));
            let start = tokio::time::Instant::now();
            let mut takeover = tokio::time::interval_at(start + TAKEOVER_EVERY, TAKEOVER_EVERY);
            let mut full = tokio::time::interval_at(start + interval, interval);
            takeover.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let outcome = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = takeover.tick() => {
                        let mut report = PassReport::default();
                        self.take_over(&mut report).await.map(|()| report)
                    }
                    _ = full.tick() => self.run_once().await,
                };
                match outcome {
                    Ok(report) if report.is_empty() => {}
                    Ok(report) => tracing::info!(?report, "reconciler pass"),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "reconciler pass failed; will retry")
                    }
                }
            }
            let _ = backups.await;
        })
    }

    /// Scheduled backups and their retention, every `interval`; a backup in
    /// flight at shutdown is dropped (its operation is released, and the
    /// next process records it as interrupted).
    async fn backup_loop(self, interval: Duration, shutdown: CancellationToken) {
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(start + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => tokio::select! {
                    _ = shutdown.cancelled() => break,
                    outcome = self.run_backups_once() => outcome,
                },
            };
            match outcome {
                Ok(report) if report.is_empty() => {}
                Ok(report) => tracing::info!(?report, "backup pass"),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "backup pass failed; will retry")
                }
            }
        }
    }

    /// One whole pass: tenant roles that still log in, abandoned
    /// operations, dead requests' keys, expired deletions.
    pub async fn run_once(&self) -> Result<PassReport, TenantsError> {
        let mut report = PassReport {
            // First: a tenant's HTTP sessions log in as the login made here.
            logins: self.tenants.convert_legacy_logins().await?,
            ..PassReport::default()
        };
        self.take_over(&mut report).await?;
        let catalog = self.tenants.catalog();
        // A request older than any operation's lease is not coming back.
        report.expired_keys = catalog
            .expire_unfinished_idempotency(self.stale_after.max(Duration::from_secs(60)))
            .await?;
        let expired = catalog.expired_deletions(self.retention_days).await?;
        self.purge_expired(&expired, &mut report).await;
        report.pruned = catalog.prune(self.keep).await?;
        Ok(report)
    }

    /// The backups that are due, then retention. Runs on a loop of its own,
    /// so a long backup never holds up a takeover.
    pub async fn run_backups_once(&self) -> Result<PassReport, TenantsError> {
        let mut report = PassReport::default();
        let (backed_up, failed) = self.tenants.run_scheduled_backups(&self.backups).await?;
        report.backed_up = backed_up;
        report.backups_failed = failed;
        report.backups_pruned = self.tenants.prune_backups(&self.backups).await?;
        report.base_backup = match self.tenants.run_due_base_backup().await {
            Ok(taken) => taken.map(|kind| kind.as_str().to_string()),
            Err(e) => {
                let why = format!("{:#}", anyhow::Error::from(e));
                tracing::warn!(error = %why, "a base backup of the embedded cluster failed; the next pass tries again");
                Some(format!("failed: {why}"))
            }
        };
        Ok(report)
    }

    /// Purges the tenants a listing found past their retention. The
    /// condition is checked again on each tenant as read under its lock, so
    /// one restored (or purged) since the listing is left alone.
    pub async fn purge_expired(
        &self,
        listed: &[crate::catalog::TenantRecord],
        report: &mut PassReport,
    ) {
        let retention = chrono::Duration::days(i64::from(self.retention_days));
        for tenant in listed {
            let still_expired = |now: &crate::catalog::TenantRecord| {
                now.deleted_at
                    .is_some_and(|at| at < chrono::Utc::now() - retention)
            };
            match self
                .tenants
                .transition_if(tenant.id, Transition::Purge, still_expired)
                .await
            {
                Ok(Some(_)) => report.purged.push(tenant.id),
                Ok(None) | Err(TenantsError::Busy) | Err(TenantsError::NotDeleted) => {}
                Err(e) => report.failed.push((tenant.id.as_uuid(), e.to_string())),
            }
        }
    }

    /// Claims and finishes every operation whose owner is gone or silent.
    async fn take_over(&self, report: &mut PassReport) -> Result<(), TenantsError> {
        let ops = self.tenants.operations();
        let claimable = ops.catalog().claimable_operations(self.stale_after).await?;
        let outcomes: Vec<(Uuid, Option<Result<(), String>>)> =
            futures_util::stream::iter(claimable)
                .map(|op| async move { (op.id, self.take_over_one(&op).await) })
                .buffer_unordered(RESUME_CONCURRENCY)
                .collect()
                .await;
        for (op, outcome) in outcomes {
            match outcome {
                None => {}
                Some(Ok(())) => report.resumed.push(op),
                Some(Err(e)) => report.failed.push((op, e)),
            }
        }
        Ok(())
    }

    /// `None` when another process took it first.
    async fn take_over_one(&self, op: &Operation) -> Option<Result<(), String>> {
        let lease = match self.tenants.operations().claim(op).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return None,
            Err(e) => return Some(Err(e.to_string())),
        };
        // Drains and fleet runs go on where they stopped, in the
        // background: they take minutes, and takeovers must not wait for
        // them. Every other kind is about one tenant's lifecycle.
        let outcome = match op.kind {
            OpKind::Drain => {
                let (tenants, op) = (self.tenants.clone(), op.clone());
                tokio::spawn(async move {
                    if let Err(e) = tenants.resume_drain(&op, &lease).await {
                        tracing::warn!(op = %op.id, error = %format!("{:#}", anyhow::Error::from(e)), "a resumed drain failed");
                    }
                });
                Ok(())
            }
            OpKind::FleetRun => {
                let (fleet, op) = (self.fleet.clone(), op.clone());
                tokio::spawn(async move {
                    if let Err(e) = fleet.resume_run(&op, &lease).await {
                        tracing::warn!(op = %op.id, error = %format!("{:#}", anyhow::Error::from(e)), "a resumed fleet run failed");
                    }
                });
                Ok(())
            }
            // A run's revert goes on from its ledger, as a run does.
            OpKind::FleetRevert => {
                let (fleet, op) = (self.fleet.clone(), op.clone());
                tokio::spawn(async move {
                    if let Err(e) = fleet.resume_revert(&op, &lease).await {
                        tracing::warn!(op = %op.id, error = %format!("{:#}", anyhow::Error::from(e)), "a resumed revert failed");
                    }
                });
                Ok(())
            }
            // A rebalance runs the rest of its plan.
            OpKind::Rebalance => {
                let (tenants, op) = (self.tenants.clone(), op.clone());
                tokio::spawn(async move {
                    if let Err(e) = tenants.resume_rebalance(&op, &lease).await {
                        tracing::warn!(op = %op.id, error = %format!("{:#}", anyhow::Error::from(e)), "a resumed rebalance failed");
                    }
                });
                Ok(())
            }
            // A drift scan goes on with the tenants it has not recorded.
            OpKind::DriftScan => match self.drift.clone() {
                Some(scans) => {
                    let op = op.clone();
                    tokio::spawn(async move {
                        if let Err(e) = scans.resume(&op, &lease).await {
                            tracing::warn!(op = %op.id, error = %format!("{:#}", anyhow::Error::from(e)), "a resumed drift scan failed");
                        }
                    });
                    Ok(())
                }
                None => {
                    lease.release("this process does not run drift scans").await;
                    Ok(())
                }
            },
            // A base backup cut off is not resumed: the schedule takes another.
            OpKind::BaseBackup => self
                .tenants
                .abandon_base_backup(&lease)
                .await
                .map_err(|e| format!("{:#}", anyhow::Error::from(e))),
            OpKind::RestoreAsNew => self
                .tenants
                .abandon_restore_as_new(&lease)
                .await
                .map_err(|e| format!("{:#}", anyhow::Error::from(e))),
            _ => self
                .tenants
                .resume(op, &lease)
                .await
                .map_err(|e| format!("{:#}", anyhow::Error::from(e))),
        };
        if let Err(e) = &outcome {
            tracing::warn!(op = %op.id, kind = %op.kind, error = %e, "could not finish an operation another process left");
        }
        Some(outcome)
    }

    /// Operations whose owner is gone or silent now: what the next pass
    /// takes over.
    pub async fn abandoned_operations(&self) -> Result<Vec<Operation>, TenantsError> {
        Ok(self
            .tenants
            .catalog()
            .claimable_operations(self.stale_after)
            .await?)
    }
}
