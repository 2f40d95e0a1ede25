//! Why a fleet run or a revert stopped before its last tenant, and how its
//! operation ends for that reason.
//!
//! Rules:
//! - The first reason recorded wins; a cancel counts only when nothing
//!   else stopped the work first.
//! - A worker that could not write to the catalog stops the work as
//!   `stopped` (its last tenant's end may be unrecorded: a resume takes it
//!   up again), and the operation ends `failed` with
//!   `catalog_unavailable`: never as a cancel or as too many failures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

use super::FleetError;
use crate::catalog::Ending;
use crate::error_code::ErrorCode;
use crate::operations::Lease;

/// How often a running fleet run (or revert) asks the catalog whether it
/// was cancelled.
const CANCEL_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the work stopped before its last tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Halt {
    /// A worker's write to the catalog failed.
    Catalog,
    /// An operator cancelled the operation.
    Cancelled,
    /// More tenants failed than the run's `max_failures`.
    TooManyFailures,
}

impl Halt {
    /// What the run's (or revert's) record and its operation say.
    pub(super) fn message(self) -> &'static str {
        match self {
            Self::Catalog => {
                "a write to the catalog failed; the remaining tenants are left pending"
            }
            Self::Cancelled => "cancelled; the remaining tenants are left pending",
            Self::TooManyFailures => {
                "failures exceeded max_failures; the remaining tenants are left pending"
            }
        }
    }

    /// How the operation ends.
    pub(super) fn ending(self) -> (Ending, ErrorCode) {
        match self {
            Self::Catalog => (Ending::Failed, ErrorCode::CatalogUnavailable),
            Self::Cancelled => (Ending::Cancelled, ErrorCode::Cancelled),
            Self::TooManyFailures => (Ending::Failed, ErrorCode::TooManyFailures),
        }
    }

    /// Whether the work stops whatever is still pending: a tenant's end may
    /// not be recorded, so it cannot be called finished.
    fn always_stops(self) -> bool {
        self == Self::Catalog
    }
}

/// Runs `work`, a run's or a revert's execution, watching for a cancel
/// another replica took (seen within `CANCEL_POLL`), and ends `lease` the
/// way the work ended; `failed` counts its summary's failed tenants.
pub(super) async fn run_to_end<T>(
    lease: &Lease,
    work: impl std::future::Future<Output = Result<(T, Option<Halt>), FleetError>>,
    failed: impl Fn(&T) -> i64,
    verb: &str,
) -> Result<T, FleetError> {
    let (summary, halt) = match lease.watching_cancel(CANCEL_POLL, work).await {
        Ok((summary, halt)) => (Ok(summary), halt),
        Err(e) => (Err(e), None),
    };
    if let Err(FleetError::Abandoned(_)) = &summary {
        return summary;
    }
    let failed = summary.as_ref().map_or(0, failed);
    let (ending, code, message) = operation_end(summary.as_ref().err(), halt, failed, verb);
    lease.end(ending, code, message.as_deref()).await?;
    summary
}

/// How the operation of a run or a revert ends, from how its execution
/// ended: with an error, stopped early (`halt`), or with `failed` of its
/// tenants failed (`verb` names their work: "migrate", "revert").
fn operation_end(
    error: Option<&FleetError>,
    halt: Option<Halt>,
    failed: i64,
    verb: &str,
) -> (Ending, Option<ErrorCode>, Option<String>) {
    match (error, halt) {
        (Some(e), _) => (
            Ending::Failed,
            Some(ErrorCode::FleetRunFailed),
            Some(e.to_string()),
        ),
        (None, Some(halt)) => {
            let (ending, code) = halt.ending();
            (ending, Some(code), Some(halt.message().into()))
        }
        (None, None) if failed == 0 => (Ending::Succeeded, None, None),
        (None, None) => (
            Ending::Failed,
            Some(ErrorCode::TenantMigrationsFailed),
            Some(format!("{failed} tenants failed to {verb}")),
        ),
    }
}

/// The workers' shared stop: a flag they read before each tenant, and the
/// first reason it was set for.
pub(super) struct Stop {
    set: AtomicBool,
    why: OnceLock<Halt>,
    cancel: CancellationToken,
}

impl Stop {
    pub(super) fn new(cancel: CancellationToken) -> Self {
        Self {
            set: AtomicBool::new(false),
            why: OnceLock::new(),
            cancel,
        }
    }

    /// Takes no more tenants, for `why` (unless stopped for another first).
    pub(super) fn halt(&self, why: Halt) {
        let _ = self.why.set(why);
        self.set.store(true, Ordering::SeqCst);
    }

    /// Whether workers must take no more tenants.
    pub(super) fn stopping(&self) -> bool {
        self.set.load(Ordering::SeqCst) || self.cancel.is_cancelled()
    }

    /// The token an operator's cancel fires.
    pub(super) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Why the work stopped, if it did.
    pub(super) fn why(&self) -> Option<Halt> {
        self.why
            .get()
            .copied()
            .or_else(|| self.cancel.is_cancelled().then_some(Halt::Cancelled))
    }

    /// The halt the work ends with, given the tenants still `pending`: a
    /// stop with nothing left pending is no stop, unless its reason says
    /// otherwise.
    pub(super) fn ended(&self, pending: i64) -> Option<Halt> {
        self.why().filter(|h| pending > 0 || h.always_stops())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_a_cancel_counts_only_alone() {
        let cancel = CancellationToken::new();
        let stop = Stop::new(cancel.clone());
        assert!(!stop.stopping());
        assert_eq!(stop.why(), None);
        cancel.cancel();
        assert!(stop.stopping());
        assert_eq!(stop.why(), Some(Halt::Cancelled));
        stop.halt(Halt::Catalog);
        stop.halt(Halt::TooManyFailures);
        assert_eq!(stop.why(), Some(Halt::Catalog));
    }

    #[test]
    fn only_a_catalog_failure_stops_a_run_with_nothing_pending() {
        let stop = Stop::new(CancellationToken::new());
        stop.halt(Halt::TooManyFailures);
        assert_eq!(stop.ended(0), None);
        assert_eq!(stop.ended(2), Some(Halt::TooManyFailures));
        let stop = Stop::new(CancellationToken::new());
        stop.halt(Halt::Catalog);
        assert_eq!(stop.ended(0), Some(Halt::Catalog));
    }
}
