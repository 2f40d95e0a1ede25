//! One execution of a drift scan: every tenant the scan has not recorded
//! yet, checked and recorded through the scan's fence.
//!
//! Rules:
//! - At most `SESSIONS_PER_SERVER` checks run at once on one database
//!   server (a queue per server that wide, and a semaphore per server held
//!   around each `Inspector::check`, which opens one session at a time), so
//!   a scan never takes more than that many of a server's sessions, however
//!   large the fleet; the servers' queues run side by side.
//! - A tenant that cannot be checked is recorded `unknown` with the reason
//!   (its server down or unregistered, busy with another operation, the
//!   check's error), never skipped: the scan ends with every tenant recorded.
//! - A tenant busy with another operation (a move, a restore, a migration)
//!   is not opened: its database may be about to change under the check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::scans::{ScanError, Scans};
use super::DriftCheck;
use crate::catalog::{
    CatalogError, DbServer, DriftState, Ending, NewDrift, ScanRecord, ScanTarget, ServerState,
};
use crate::error_code::ErrorCode;
use crate::operations::Lease;

/// Checks (and so sessions) a scan runs at once on one database server.
pub const SESSIONS_PER_SERVER: usize = 2;

/// How often a running scan asks the catalog whether it was cancelled.
const CANCEL_POLL: Duration = Duration::from_secs(1);

/// How often a running scan writes its progress (and always its last step),
/// so a fleet of thousands costs a few writes a second, not one per tenant.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Where a scan stands, after each tenant.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ScanProgress {
    pub total: i64,
    pub done: i64,
}

/// Called after each tenant.
pub type ScanProgressFn = Arc<dyn Fn(ScanProgress) + Send + Sync>;

/// One tenant's check, as recorded.
pub(super) enum Outcome {
    Checked(DriftCheck),
    Unknown { version: i32, reason: String },
}

impl Outcome {
    pub(super) fn state(&self) -> DriftState {
        match self {
            Self::Checked(c) if c.in_sync => DriftState::InSync,
            Self::Checked(_) => DriftState::Drifted,
            Self::Unknown { .. } => DriftState::Unknown,
        }
    }

    /// The record to write (for `scan`, if any).
    pub(super) fn record(&self, scan: Option<Uuid>) -> NewDrift<'_> {
        match self {
            Self::Checked(c) => NewDrift {
                state: self.state(),
                version: c.version,
                fingerprint: Some(&c.fingerprint),
                expected_fingerprint: Some(&c.expected_fingerprint),
                diff: serde_json::to_value(&c.diff).unwrap_or_default(),
                reason: None,
                scan,
            },
            Self::Unknown { version, reason } => NewDrift {
                state: DriftState::Unknown,
                version: *version,
                fingerprint: None,
                expected_fingerprint: None,
                diff: serde_json::json!([]),
                reason: Some(reason),
                scan,
            },
        }
    }
}

/// A server as a scan uses it: its row and its check permits.
pub(super) type ServerSlots = HashMap<Uuid, (DbServer, Arc<Semaphore>)>;

impl Scans {
    /// The servers, each with `SESSIONS_PER_SERVER` permits.
    pub(super) async fn server_slots(&self) -> Result<ServerSlots, ScanError> {
        Ok(self
            .catalog
            .list_servers()
            .await?
            .into_iter()
            .map(|s| (s.id, (s, Arc::new(Semaphore::new(SESSIONS_PER_SERVER)))))
            .collect())
    }

    /// Checks one tenant, holding one of its server's permits meanwhile.
    pub(super) async fn check_target(&self, target: &ScanTarget, servers: &ServerSlots) -> Outcome {
        let version = target.schema_version;
        let unknown = |reason: String| Outcome::Unknown { version, reason };
        let Some((server, permits)) = target.db_server_id.and_then(|id| servers.get(&id)) else {
            return unknown("its database server is not registered".into());
        };
        if server.state == ServerState::Down {
            return unknown(format!("its database server {} is down", server.name));
        }
        let _permit = permits
            .acquire()
            .await
            .expect("scan permits are never closed");
        match self.catalog.unfinished_operation_of(target.tenant_id).await {
            Ok(Some(op)) => return unknown(format!("busy with a {} operation", op.kind)),
            Ok(None) => {}
            Err(e) => return unknown(format!("the catalog failed: {e}")),
        }
        match self.inspector.check(server, &target.db_name, version).await {
            Ok(check) => Outcome::Checked(check),
            Err(e) => unknown(error_chain(&e)),
        }
    }

    /// Runs scan `id` and ends its operation the way it ended.
    pub(super) async fn execute_under(
        &self,
        id: Uuid,
        progress: ScanProgressFn,
        lease: &Lease,
    ) -> Result<ScanRecord, ScanError> {
        let watch = async {
            while !lease.check_cancel().await {
                tokio::time::sleep(CANCEL_POLL).await;
            }
        };
        let outcome = tokio::select! {
            outcome = self.execute(id, &progress, lease) => outcome,
            () = watch => Ok(()),
        };
        // No longer this process's scan: whoever holds it now ends it.
        let outcome = match outcome {
            Err(e @ (ScanError::Abandoned(_) | ScanError::Catalog(CatalogError::Fenced))) => {
                return Err(e)
            }
            other => other,
        };
        let (state, ending, code, error) = match &outcome {
            Err(e) => (
                "failed",
                Ending::Failed,
                Some(e.code()),
                Some(e.to_string()),
            ),
            Ok(()) if lease.cancel_requested() => (
                "cancelled",
                Ending::Cancelled,
                Some(ErrorCode::Cancelled),
                Some("cancelled; the tenants not checked keep their last record".to_string()),
            ),
            Ok(()) => ("succeeded", Ending::Succeeded, None, None),
        };
        let fence = Some(lease.fence());
        let record = self
            .catalog
            .finish_drift_scan(id, state, error.as_deref(), fence)
            .await?;
        lease.end(ending, code, error.as_deref()).await?;
        outcome?;
        record.ok_or(ScanError::Catalog(CatalogError::Fenced))
    }

    /// Checks every tenant scan `id` has not recorded yet.
    async fn execute(
        &self,
        id: Uuid,
        progress: &ScanProgressFn,
        lease: &Lease,
    ) -> Result<(), ScanError> {
        let fence = lease.fence();
        let targets = self.catalog.drift_scan_targets(id).await?;
        let checked = self.catalog.drift_scan_checked(id).await?;
        let total = checked + targets.len() as i64;
        self.catalog.set_drift_scan_total(id, total, fence).await?;
        lease.progress(Some(checked), Some(total), None).await;
        let servers = self.server_slots().await?;
        let done = AtomicI64::new(checked);
        let mut written = Instant::now();
        // One queue per server, each `SESSIONS_PER_SERVER` wide, all at
        // once: a busy server never holds up the checks of another.
        let mut queues: HashMap<Option<Uuid>, Vec<ScanTarget>> = HashMap::new();
        for target in targets {
            queues.entry(target.db_server_id).or_default().push(target);
        }
        let servers = &servers;
        let mut checks = futures_util::stream::select_all(queues.into_values().map(|queue| {
            futures_util::stream::iter(queue)
                .map(move |target| async move {
                    let outcome = self.check_target(&target, servers).await;
                    (target, outcome)
                })
                .buffer_unordered(SESSIONS_PER_SERVER)
                .boxed()
        }));
        // The checks go on while a result is recorded: they feed a channel
        // as they end, and the recording below reads it. Both are polled
        // together, and the checks are dropped once the recording stops.
        let (sender, mut results) = tokio::sync::mpsc::channel(SESSIONS_PER_SERVER);
        let produce = async move {
            while let Some(pair) = checks.next().await {
                if sender.send(pair).await.is_err() {
                    break;
                }
            }
        };
        let record = async {
            while let Some((target, outcome)) = results.recv().await {
                self.catalog
                    .record_drift(target.tenant_id, &outcome.record(Some(id)), Some(fence))
                    .await?;
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n == total || written.elapsed() >= PROGRESS_EVERY {
                    lease.progress(Some(n), Some(total), None).await;
                    written = Instant::now();
                }
                progress(ScanProgress { total, done: n });
                crate::failpoint!("drift.between_tenants");
                // A cancel another replica took is read from the catalog
                // between two tenants: one read beside a check's many.
                if lease.check_cancel().await {
                    break;
                }
            }
            Ok::<(), ScanError>(())
        };
        tokio::pin!(produce, record);
        let mut produced = false;
        loop {
            tokio::select! {
                () = &mut produce, if !produced => produced = true,
                recorded = &mut record => return recorded,
            }
        }
    }
}

/// `error: cause: cause`, for the record an operator reads.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
