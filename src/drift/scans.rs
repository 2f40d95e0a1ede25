//! Fleet drift scans as a service: the commands (a scan, one tenant's check)
//! and what the API, the CLI and the console read of drift.
//!
//! A scan is an operation (`drift_scan`, its subject the scan): begun when
//! it starts, followed, cancelled, and taken over by the reconciler when
//! its runner stops. Every command writes its audit record first.
//!
//! Rules:
//! - At most one scan runs at a time (`Catalog::begin_drift_scan`); asking
//!   for another while one runs answers with the running one.
//! - A scan row whose operation was never begun (a crash in between) is
//!   ended as failed once `ORPHAN_AFTER` old, and a new scan begun, so it
//!   never blocks the next; a younger one is still beginning, and waited for.

use std::time::Duration;

use uuid::Uuid;

use super::Inspector;
use crate::catalog::{Catalog, CatalogError, Ending, Operation, ScanRecord};
use crate::control_audit::{audited, Actor, Change};
use crate::error_code::ErrorCode;
use crate::operations::{Abandoned, Lease, Operations};

/// How often a caller waiting for another runner's scan looks at it.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// A scan recorded this long ago with no operation begun is an orphan (its
/// runner died in between); a younger one is still beginning.
const ORPHAN_AFTER: Duration = Duration::from_secs(10);

/// Looks at a scan that is beginning at most this many times.
const STARTING_TRIES: usize = 60;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/http/error/tests`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum ScanError {
    #[error("no such tenant")]
    TenantNotFound,
    #[error("a subtenant shares its parent's database; check the parent")]
    NotRoot,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Abandoned(#[from] Abandoned),
}

impl ScanError {
    /// The error code the API answers with, and a failed scan records.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TenantNotFound => ErrorCode::TenantNotFound,
            Self::NotRoot => ErrorCode::NotARootTenant,
            Self::Catalog(e) => e.code(),
            Self::Abandoned(_) => ErrorCode::OperationAbandoned,
        }
    }
}

/// Checks the fleet's tenants for drift, and reads what was found.
#[derive(Clone)]
pub struct Scans {
    pub(super) catalog: Catalog,
    pub(super) ops: Operations,
    pub(super) inspector: Inspector,
}

/// A scan started: its record, its operation, and its work, already running
/// (`None` when another runner's scan was running, `op` naming it).
#[must_use = "the scan goes on either way; wait for it or answer with its operation"]
pub struct LaunchedScan {
    pub scan: ScanRecord,
    pub op: Uuid,
    task: Option<tokio::task::JoinHandle<Result<ScanRecord, ScanError>>>,
    catalog: Catalog,
}

impl LaunchedScan {
    /// Waits for the scan's end (another runner's too) and returns its record.
    pub async fn wait(self) -> Result<ScanRecord, ScanError> {
        if let Some(task) = self.task {
            return match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(ScanError::Abandoned(Abandoned)),
            };
        }
        loop {
            match self.catalog.get_drift_scan(self.scan.id).await? {
                Some(scan) if scan.state != "running" => return Ok(scan),
                Some(_) => tokio::time::sleep(WAIT_POLL).await,
                None => return Err(CatalogError::TenantMissing.into()),
            }
        }
    }
}

impl Scans {
    pub fn new(catalog: Catalog, ops: Operations, inspector: Inspector) -> Self {
        Self {
            catalog,
            ops,
            inspector,
        }
    }

    /// Starts a scan of the fleet (or answers with the one running), under
    /// its audit record. `progress` is called after each tenant.
    pub async fn start(
        &self,
        actor: &Actor,
        progress: super::scan_run::ScanProgressFn,
    ) -> Result<LaunchedScan, ScanError> {
        let what = Change {
            tenant: None,
            action: "drift.scan",
            resource: "drift_scans",
        };
        let begin = self.begin(progress);
        audited(&self.catalog, actor, what, begin, |l| {
            Some((None, format!("drift_scans/{}", l.scan.id)))
        })
        .await
    }

    async fn begin(
        &self,
        progress: super::scan_run::ScanProgressFn,
    ) -> Result<LaunchedScan, ScanError> {
        for _ in 0..STARTING_TRIES {
            let scan = match self.catalog.begin_drift_scan().await {
                Ok(Ok(scan)) => scan,
                Ok(Err(running)) => match self.catalog.drift_scan_operation(running).await? {
                    Some(op) => return self.already(running, op).await,
                    None => {
                        // Its runner is beginning its operation, or died
                        // before it did: then it is ended, and we go on.
                        let catalog = &self.catalog;
                        if !catalog
                            .fail_orphan_drift_scan(running, ORPHAN_AFTER)
                            .await?
                        {
                            tokio::time::sleep(WAIT_POLL).await;
                        }
                        continue;
                    }
                },
                Err(CatalogError::TenantBusy) => continue,
                Err(e) => return Err(e.into()),
            };
            let params = serde_json::json!({});
            let lease = match self
                .ops
                .begin_subject(crate::catalog::OpKind::DriftScan, scan.id, None, params)
                .await
            {
                Ok(Ok(lease)) => lease,
                Ok(Err(op)) => return self.already(scan.id, op).await,
                Err(e) => {
                    let why = Some("its operation could not be begun");
                    let _ = self
                        .catalog
                        .finish_drift_scan(scan.id, "failed", why, None)
                        .await;
                    return Err(e.into());
                }
            };
            return Ok(self.spawn(scan, lease, progress));
        }
        Err(CatalogError::TenantBusy.into())
    }

    async fn already(&self, scan: Uuid, op: Uuid) -> Result<LaunchedScan, ScanError> {
        let scan = self
            .catalog
            .get_drift_scan(scan)
            .await?
            .ok_or(CatalogError::TenantMissing)?;
        Ok(LaunchedScan {
            scan,
            op,
            task: None,
            catalog: self.catalog.clone(),
        })
    }

    fn spawn(
        &self,
        scan: ScanRecord,
        lease: Lease,
        progress: super::scan_run::ScanProgressFn,
    ) -> LaunchedScan {
        let op = lease.op();
        let this = self.clone();
        let id = scan.id;
        let started = lease.start(move |lease| {
            Box::pin(async move { this.execute_under(id, progress, lease).await })
        });
        let span = tracing::info_span!("operation", op = %op);
        let task = started.run.map(|work| {
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    let result = work.await;
                    if let Err(e) = &result {
                        tracing::error!(scan = %id, error = %e, "drift scan failed");
                    }
                    result
                },
                span,
            ))
        });
        LaunchedScan {
            scan,
            op,
            task,
            catalog: self.catalog.clone(),
        }
    }

    /// Goes on with a scan whose runner stopped (claimed as `lease`): only
    /// the tenants it has not recorded yet.
    pub async fn resume(&self, op: &Operation, lease: &Lease) -> Result<(), ScanError> {
        let scan = op.subject();
        let record = match scan {
            Some(id) => self.catalog.get_drift_scan(id).await?,
            None => None,
        };
        let Some(record) = record else {
            lease
                .end(
                    Ending::Failed,
                    Some(ErrorCode::Interrupted),
                    Some("its scan is gone"),
                )
                .await?;
            return Ok(());
        };
        if record.state != "running" {
            // Ended, but its operation was not: end that the same way.
            let ending = match record.state.as_str() {
                "succeeded" => Ending::Succeeded,
                "cancelled" => Ending::Cancelled,
                _ => Ending::Failed,
            };
            let code = (ending != Ending::Succeeded).then_some(ErrorCode::Interrupted);
            lease.end(ending, code, record.error.as_deref()).await?;
            return Ok(());
        }
        tracing::info!(op = %op.id, scan = %record.id, "resuming a drift scan another process left");
        lease
            .guard(self.execute_under(record.id, std::sync::Arc::new(|_| {}), lease))
            .await
            .map(|_| ())
    }
}
