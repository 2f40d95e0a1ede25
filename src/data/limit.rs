//! Limits on rows (`maxAgents`, `maxConcurrentCalls`), checked before one
//! more row counts against them.
//!
//! Rules: a check holds `LIMIT_LOCK` to the end of its transaction, so two
//! checks in one tenant database never both see room for the last row; it
//! runs before the caller's scope is entered, so the root's count covers
//! every subtenant; the root's total and a subtenant's own both apply.

use super::{Caller, DataError, Transaction, LIMIT_LOCK};

/// A limit and the counts it applies to: every row of the tenant
/// database, and one subtenant's (`$1`), each a `SELECT count(*)`.
pub(super) struct RowLimit {
    /// As the tenant's features name it.
    pub name: &'static str,
    pub count_all: &'static str,
    pub count_subtenant: &'static str,
}

impl RowLimit {
    /// Refuses one more row when the root already has `root_max` or the
    /// caller's subtenant `own_max`.
    pub(super) async fn check(
        &self,
        tx: &Transaction<'_>,
        caller: &Caller,
        root_max: u32,
        own_max: u32,
    ) -> Result<(), DataError> {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LIMIT_LOCK])
            .await?;
        let reached = |max: u32| DataError::LimitExceeded {
            limit: self.name,
            max,
        };
        let total: i64 = tx.query_one(self.count_all, &[]).await?.get(0);
        if total >= i64::from(root_max) {
            return Err(reached(root_max));
        }
        if let Some(sub) = caller.subtenant_uuid() {
            let mine: i64 = tx.query_one(self.count_subtenant, &[&sub]).await?.get(0);
            if mine >= i64::from(own_max) {
                return Err(reached(own_max));
            }
        }
        Ok(())
    }
}
