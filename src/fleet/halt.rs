//! Why a fleet run or a revert stopped before its last tenant, and how its
//! operation ends for that reason.
//!
//! Rules:
//! - The gravest reason wins, whatever came first: a worker that failed
//!   (the catalog, or a panic), then a cancel, then too many failures. So
//!   a cancel is reported as one though tenants under way failed after it.
//! - A worker that failed stops the work as `stopped` even with nothing
//!   pending (its last tenant's end may be unrecorded: a resume takes it
//!   up again), and the operation ends `failed` (`catalog_unavailable`, or
//!   `internal_error` for a panic): never as a cancel or as too many
//!   failures.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use super::FleetError;
use crate::catalog::Ending;
use crate::error_code::ErrorCode;
use crate::operations::Lease;

/// How often a running fleet run (or revert) asks the catalog whether it
/// was cancelled.
const CANCEL_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the work stopped before its last tenant, the gravest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum Halt {
    /// More tenants failed than the run's `max_failures`.
    TooManyFailures = 1,
    /// An operator cancelled the operation.
    Cancelled = 2,
    /// A worker's write to the catalog failed.
    Catalog = 3,
    /// A worker panicked.
    Worker = 4,
}

impl Halt {
    /// What the run's (or revert's) record and its operation say.
    pub(super) fn message(self) -> &'static str {
        match self {
            Self::Catalog => {
                "a write to the catalog failed; the remaining tenants are left pending"
            }
            Self::Worker => "a worker failed; the remaining tenants are left pending",
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
            Self::Worker => (Ending::Failed, ErrorCode::InternalError),
            Self::Cancelled => (Ending::Cancelled, ErrorCode::Cancelled),
            Self::TooManyFailures => (Ending::Failed, ErrorCode::TooManyFailures),
        }
    }

    /// Whether the work stops whatever is still pending: a tenant's end may
    /// not be recorded, so it cannot be called finished.
    fn always_stops(self) -> bool {
        self >= Self::Catalog
    }

    /// Halts `stop` for a worker that ended with a catalog error (told to
    /// `log`) or panicked; what ran is recorded.
    pub(super) fn of_worker<E: std::fmt::Display>(
        joined: Result<Result<(), E>, tokio::task::JoinError>,
        stop: &Stop,
        log: impl FnOnce(&E),
    ) {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                log(&e);
                stop.halt(Self::Catalog);
            }
            Err(panic) => {
                tracing::error!(error = %panic, "a fleet worker panicked");
                stop.halt(Self::Worker);
            }
        }
    }

    fn from_u8(n: u8) -> Option<Self> {
        [
            Self::TooManyFailures,
            Self::Cancelled,
            Self::Catalog,
            Self::Worker,
        ]
        .into_iter()
        .find(|h| *h as u8 == n)
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

/// The workers' shared stop: read before each tenant, with the gravest
/// reason it was set for (0: not set).
pub(super) struct Stop {
    why: AtomicU8,
    cancel: CancellationToken,
}

impl Stop {
    pub(super) fn new(cancel: CancellationToken) -> Self {
        Self {
            why: AtomicU8::new(0),
            cancel,
        }
    }

    /// Takes no more tenants, for `why` (unless for a graver reason).
    pub(super) fn halt(&self, why: Halt) {
        self.why.fetch_max(why as u8, Ordering::SeqCst);
    }

    /// Whether workers must take no more tenants.
    pub(super) fn stopping(&self) -> bool {
        self.why.load(Ordering::SeqCst) != 0 || self.cancel.is_cancelled()
    }

    /// The token an operator's cancel fires.
    pub(super) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Why the work stopped, if it did.
    pub(super) fn why(&self) -> Option<Halt> {
        let recorded = Halt::from_u8(self.why.load(Ordering::SeqCst));
        let cancelled = self.cancel.is_cancelled().then_some(Halt::Cancelled);
        recorded.max(cancelled)
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
    fn the_gravest_reason_wins_whatever_came_first() {
        let cancel = CancellationToken::new();
        let stop = Stop::new(cancel.clone());
        assert!(!stop.stopping());
        assert_eq!(stop.why(), None);
        cancel.cancel();
        assert!(stop.stopping());
        assert_eq!(stop.why(), Some(Halt::Cancelled));
        // Tenants under way that fail after a cancel leave it a cancel.
        stop.halt(Halt::TooManyFailures);
        assert_eq!(stop.why(), Some(Halt::Cancelled));
        stop.halt(Halt::Catalog);
        stop.halt(Halt::TooManyFailures);
        assert_eq!(stop.why(), Some(Halt::Catalog));
        stop.halt(Halt::Worker);
        assert_eq!(stop.why(), Some(Halt::Worker));
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
