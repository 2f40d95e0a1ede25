//! Lock safety of a tenant migration: each runs with a short `lock_timeout`
//! and a bounded `statement_timeout`, and a migration that hit the lock
//! timeout is tried again after a backoff, a few times, before the tenant
//! fails.
//!
//! Why: an `ALTER TABLE` waiting for a lock held by a long transaction sits
//! in the lock queue, and every later query on that table queues behind it,
//! so the tenant's application stops until the long transaction ends. With
//! `lock_timeout` the migration gives up instead, and the tenant's queries
//! wait at most that long.
//!
//! Rule: the timeouts are set on the migrating session after it holds the
//! tenant's advisory migration lock (waiting for another runner is not a
//! lock the tenant's queries queue behind), and before any migration runs.
//! Each migration is its own transaction, so a retry starts from the last
//! version that committed.

use std::time::Duration;

use tokio_postgres::error::SqlState;

/// How a tenant migration treats locks (`migrations.lock_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    /// Attempts after the first one that hit the lock timeout.
    pub retries: u32,
    /// The wait before the first retry; doubled for each next one.
    pub backoff: Duration,
}

impl Default for LockPolicy {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(600),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

impl LockPolicy {
    /// The statements that set the timeouts on the migrating session.
    pub(super) fn statements(&self) -> String {
        // PostgreSQL takes at most i32::MAX milliseconds; 0 is refused by the settings.
        let ms = |d: Duration| d.as_millis().clamp(1, i32::MAX as u128);
        format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            ms(self.lock_timeout),
            ms(self.statement_timeout)
        )
    }

    /// The wait before retry number `attempt` (1 for the first retry).
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
    }
}

/// Whether `error` (or one of its causes) is PostgreSQL's
/// `lock_not_available`, which `lock_timeout` raises.
pub(super) fn is_lock_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
            if pg.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_first_retry_and_never_overflows() {
        let policy = LockPolicy {
            backoff: Duration::from_millis(500),
            ..LockPolicy::default()
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(500));
        assert_eq!(policy.backoff(2), Duration::from_millis(1000));
        assert_eq!(policy.backoff(3), Duration::from_millis(2000));
        assert!(policy.backoff(u32::MAX) >= policy.backoff(17));
    }

    #[test]
    fn an_error_without_a_postgres_cause_is_not_a_lock_timeout() {
        let e = std::io::Error::other("boom");
        assert!(!is_lock_timeout(&e));
    }
}
