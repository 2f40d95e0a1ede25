//! Makes observed state match the catalog's intent. At start-up and then
//! every `reconciler.interval_secs`, it finishes (or undoes) operations that a
//! crashed process left unfinished, and purges soft-deleted tenants whose
//! retention has run out. It acts only on operation records.

mod doctor;

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use doctor::{DoctorReport, MissingDatabase, OrphanObject};

use crate::catalog::{OpKind, Operation, TenantChange};
use crate::config::ReconcilerSettings;
use crate::domain::{TenantId, TenantStatus};
use crate::tenants::{Tenants, TenantsError, Transition};

#[derive(Clone)]
pub struct Reconciler {
    tenants: Tenants,
    stale_after: Duration,
    retention_days: u32,
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct PassReport {
    pub resumed: Vec<Uuid>,
    pub failed: Vec<(Uuid, String)>,
    pub purged: Vec<TenantId>,
    /// Idempotency keys of requests that died before answering.
    pub expired_keys: u64,
}

impl Reconciler {
    pub fn new(tenants: Tenants, settings: &ReconcilerSettings, retention_days: u32) -> Self {
        Self {
            tenants,
            stale_after: Duration::from_secs(settings.stale_after_secs),
            retention_days,
        }
    }

    /// Runs a pass every `interval` until `shutdown` is cancelled. The start-up
    /// pass is the caller's, so the first one here comes after one interval.
    pub fn spawn(
        self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                match self.run_once().await {
                    Ok(report)
                        if report.resumed.is_empty()
                            && report.failed.is_empty()
                            && report.purged.is_empty()
                            && report.expired_keys == 0 => {}
                    Ok(report) => tracing::info!(?report, "reconciler pass"),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "reconciler pass failed; will retry")
                    }
                }
            }
        })
    }

    /// One pass over stale operations and expired deletions.
    pub async fn run_once(&self) -> Result<PassReport, TenantsError> {
        let mut report = PassReport::default();
        for op in self
            .tenants
            .catalog()
            .stale_operations(self.stale_after)
            .await?
        {
            // This process is running it (or another pass just took it).
            let Some(_in_flight) = self.tenants.try_track(op.id) else {
                continue;
            };
            if !self.tenants.catalog().claim_operation(&op).await? {
                continue; // Another replica took it.
            }
            match self.resume(&op).await {
                Ok(()) => report.resumed.push(op.id),
                Err(e) => {
                    tracing::warn!(op = %op.id, kind = %op.kind, error = %format!("{e:#}"), "could not finish an interrupted operation");
                    report.failed.push((op.id, e.to_string()));
                }
            }
        }
        // A request older than any operation's lease is not coming back.
        report.expired_keys = self
            .tenants
            .catalog()
            .expire_unfinished_idempotency(self.stale_after.max(Duration::from_secs(60)))
            .await?;
        for tenant in self
            .tenants
            .catalog()
            .expired_deletions(self.retention_days)
            .await?
        {
            match self.tenants.transition(tenant.id, Transition::Purge).await {
                Ok(_) => report.purged.push(tenant.id),
                Err(TenantsError::Busy) => {}
                Err(e) => report.failed.push((tenant.id.as_uuid(), e.to_string())),
            }
        }
        Ok(report)
    }

    /// Finishes one interrupted operation the way its kind requires.
    async fn resume(&self, op: &Operation) -> Result<(), TenantsError> {
        let kind =
            OpKind::parse(&op.kind).ok_or(TenantsError::Inconsistent("unknown operation kind"))?;
        let tenant_id = TenantId::from(
            op.tenant_id
                .ok_or(TenantsError::Inconsistent("operation without a tenant"))?,
        );
        let record = self
            .tenants
            .catalog()
            .get_tenant(tenant_id)
            .await?
            .ok_or(TenantsError::Inconsistent("operation on a missing tenant"))?;
        tracing::info!(op = %op.id, kind = %op.kind, tenant.id = %tenant_id, attempts = op.attempts, "resuming an interrupted operation");
        match kind {
            OpKind::CreateTenant => {
                let server_id = record
                    .db_server_id
                    .ok_or(TenantsError::Inconsistent("create without placement"))?;
                let server = self.tenants.catalog().get_server(server_id).await?.ok_or(
                    TenantsError::Inconsistent("tenant placed on an unknown server"),
                )?;
                // Rolls forward; on failure it drops what was made and marks the tenant failed.
                self.tenants
                    .finish_create_for_reconciler(&record, &server, op.id)
                    .await
                    .map(|_| ())
            }
            OpKind::CreateSubtenant => {
                let change = TenantChange {
                    status: Some(TenantStatus::Active),
                    ..TenantChange::default()
                };
                self.tenants
                    .catalog()
                    .finish_operation(op.id, tenant_id, true, None, &change)
                    .await?;
                Ok(())
            }
            OpKind::Move => self.tenants.finish_move_for_reconciler(&record, op).await,
            OpKind::RestoreBackup => {
                self.tenants
                    .finish_restore_for_reconciler(&record, op)
                    .await
            }
            other => {
                let transition = Transition::from_kind(other).expect("other kinds handled above");
                self.tenants
                    .finish_transition_for_reconciler(&record, transition, op.id)
                    .await
                    .map(|_| ())
            }
        }
    }
}
