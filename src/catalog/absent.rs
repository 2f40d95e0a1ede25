//! `absent`: the lock `doctor --fix` holds while it acts on the objects of
//! a tenant the catalog does not know (a catalog restored to an earlier
//! point). Such a tenant has no row to lock and no operation to begin, so
//! the guard locks the tenants table against writers instead: no tenant row
//! can be inserted (or brought back) until the guard is released, so "the
//! catalog does not know it", checked through the guard, stays true while
//! the caller acts. The lock is self-exclusive, so two doctors take turns.

use super::{Catalog, CatalogError};
use crate::domain::TenantId;

/// How long the guard waits for the table: a writer holds it only for the
/// length of one short transaction.
const LOCK_WAIT: &str = "10s";

/// The guard's own statements.
const STATEMENT_LIMIT: &str = "15s";

/// How long the guard may sit idle while its caller works elsewhere.
const IDLE_LIMIT: &str = "60s";

/// An open catalog transaction holding the tenants table against writers.
/// Release it when done; dropped without a release, its session is thrown
/// away, which ends the transaction and the lock.
pub struct AbsentTenantGuard {
    client: Option<deadpool_postgres::Object>,
}

impl Catalog {
    /// Holds the tenants table while `tenant` has no row: `None` (and no
    /// lock) when it has one now.
    pub async fn hold_absent_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Option<AbsentTenantGuard>, CatalogError> {
        let client = self.pool().get().await?;
        let guard = AbsentTenantGuard {
            client: Some(client),
        };
        let client = guard.client.as_ref().expect("held until released");
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '{LOCK_WAIT}';
                 SET LOCAL statement_timeout = '{STATEMENT_LIMIT}';
                 SET LOCAL idle_in_transaction_session_timeout = '{IDLE_LIMIT}';
                 LOCK TABLE tenants IN SHARE ROW EXCLUSIVE MODE"
            ))
            .await?;
        let known = client
            .query_opt("SELECT 1 FROM tenants WHERE id = $1", &[&tenant.as_uuid()])
            .await?
            .is_some();
        if known {
            guard.release().await;
            return Ok(None);
        }
        Ok(Some(guard))
    }
}

impl AbsentTenantGuard {
    /// Checks that the lock is still held (its session was not ended by
    /// the idle limit) and starts its idle time again: call it right before
    /// each step that needs the lock.
    pub async fn confirm(&self) -> Result<(), CatalogError> {
        let client = self.client.as_ref().expect("held until released");
        client.batch_execute("SELECT 1").await?;
        Ok(())
    }

    /// Ends the transaction and lets the table go.
    pub async fn release(mut self) {
        if let Some(client) = self.client.take() {
            if client.batch_execute("COMMIT").await.is_err() {
                let _ = deadpool_postgres::Object::take(client);
            }
        }
    }
}

impl Drop for AbsentTenantGuard {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Closing the session aborts the transaction on the server.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}
