//! Pruning what the catalog no longer needs, in small batches so that no
//! delete holds many rows or a long lock: audit events, finished
//! idempotency keys, finished operations and migration-run ledgers, and the
//! per-minute denial counts, and events (with their webhook deliveries)
//! as long as operations; signed-out console sessions once they would have
//! expired anyway. API keys revoked or expired longer ago than the audit
//! retention go too: the audit keeps who made and revoked them as long.
//!
//! Rules:
//! - Each delete takes at most `BATCH` (1000) rows, and a pass at most
//!   `BATCHES_PER_PASS` batches per table; what is left waits for the next.

use std::time::Duration;

use serde::Serialize;

use super::{Catalog, CatalogError};

/// Rows one statement deletes at most.
const BATCH: i64 = 1000;

/// Batches one table gets per pass; the rest waits for the next pass.
const BATCHES_PER_PASS: usize = 20;

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub audit: Duration,
    pub idempotency: Duration,
    pub operations: Duration,
}

/// What one pass pruned.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Pruned {
    pub audit_events: u64,
    pub denials: u64,
    pub idempotency_keys: u64,
    pub operations: u64,
    pub migration_runs: u64,
    pub events: u64,
    pub api_keys: u64,
    pub revoked_console_sessions: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Each table's delete of one batch of rows older than `$1` seconds.
const AUDIT: &str = "DELETE FROM audit_log WHERE id IN (
    SELECT id FROM audit_log WHERE at < now() - make_interval(secs => $1) LIMIT $2)";
const DENIALS: &str = "DELETE FROM denials WHERE ctid IN (
    SELECT ctid FROM denials WHERE minute < now() - make_interval(secs => $1) LIMIT $2)";
const IDEMPOTENCY: &str = "DELETE FROM idempotency_keys WHERE (principal, key) IN (
    SELECT principal, key FROM idempotency_keys
     WHERE completed_at < now() - make_interval(secs => $1) LIMIT $2)";
const OPERATIONS: &str = "DELETE FROM operations WHERE id IN (
    SELECT id FROM operations
     WHERE finished_at < now() - make_interval(secs => $1)
       AND state IN ('succeeded', 'failed', 'cancelled', 'rolled_back') LIMIT $2)";
const EVENTS: &str = "DELETE FROM events WHERE id IN (
    SELECT id FROM events WHERE at < now() - make_interval(secs => $1) LIMIT $2)";
/// A revoked session's row is needed only until the session would have expired.
const REVOKED_SESSIONS: &str = "DELETE FROM revoked_console_sessions WHERE id IN (
    SELECT id FROM revoked_console_sessions
     WHERE expires_at < now() - make_interval(secs => $1) LIMIT $2)";
const API_KEYS: &str = "DELETE FROM api_keys WHERE id IN (
    SELECT id FROM api_keys
     WHERE revoked_at < now() - make_interval(secs => $1)
        OR expires_at < now() - make_interval(secs => $1) LIMIT $2)";
// A run's reverts go with it; never while one is unfinished (revert).
const RUNS: &str = "DELETE FROM migration_runs WHERE id IN (
    SELECT id FROM migration_runs r
     WHERE finished_at < now() - make_interval(secs => $1)
       AND state IN ('succeeded', 'failed', 'stopped')
       AND NOT EXISTS (SELECT 1 FROM migration_reverts v
                        WHERE v.run_id = r.id AND v.state IN ('pending', 'running')) LIMIT $2)";
/// One tenant's reverts on request (a run's go with the run).
const TENANT_REVERTS: &str = "DELETE FROM migration_reverts WHERE id IN (
    SELECT id FROM migration_reverts
     WHERE run_id IS NULL AND finished_at < now() - make_interval(secs => $1) LIMIT $2)";

impl Catalog {
    /// Prunes every kind of row past its retention, in batches.
    pub async fn prune(&self, keep: Retention) -> Result<Pruned, CatalogError> {
        Ok(Pruned {
            audit_events: self.prune_batches(AUDIT, keep.audit).await?,
            denials: self.prune_batches(DENIALS, keep.audit).await?,
            idempotency_keys: self.prune_batches(IDEMPOTENCY, keep.idempotency).await?,
            operations: self.prune_batches(OPERATIONS, keep.operations).await?,
            migration_runs: self.prune_batches(RUNS, keep.operations).await?
                + self.prune_batches(TENANT_REVERTS, keep.operations).await?,
            events: self.prune_batches(EVENTS, keep.operations).await?,
            api_keys: self.prune_batches(API_KEYS, keep.audit).await?,
            revoked_console_sessions: self.prune_batches(REVOKED_SESSIONS, Duration::ZERO).await?,
        })
    }

    async fn prune_batches(&self, delete: &str, older_than: Duration) -> Result<u64, CatalogError> {
        let client = self.pool().get().await?;
        let statement = client.prepare_cached(delete).await?;
        let mut total = 0;
        for _ in 0..BATCHES_PER_PASS {
            let n = client
                .execute(&statement, &[&older_than.as_secs_f64(), &BATCH])
                .await?;
            total += n;
            if n < BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }
}
