//! A fleet run's drift gate: a tenant recorded as drifted at its version
//! is not migrated, unless the run allows drift. Its item ends `skipped`,
//! with the reason ("drifted at <checked_at>; …") in its error, and counts
//! as done: a resume leaves it skipped.
//!
//! Rule: the gate reads the tenant's drift record as a scan (or a check)
//! last wrote it; a record about an older version than the tenant's says
//! nothing of now and lets the tenant through.

use std::sync::atomic::Ordering;

use super::worker::Shared;
use super::Progress;
use crate::catalog::CatalogError;
use crate::domain::TenantId;

impl Shared {
    /// Whether `tenant`'s item was skipped for drift (and recorded so).
    pub(super) async fn skipped_for_drift(&self, tenant: TenantId) -> Result<bool, CatalogError> {
        if self.allow_drift {
            return Ok(false);
        }
        let catalog = &self.fleet.catalog;
        let Some(drift) = catalog
            .tenant_drift(tenant)
            .await?
            .filter(|d| d.is_drifted())
        else {
            return Ok(false);
        };
        let reason = drift.refusal();
        tracing::info!(run = %self.run, tenant.id = %tenant, %reason, "skipping a drifted tenant");
        catalog.skip_item(self.run, tenant, &reason).await?;
        self.succeeded.fetch_add(1, Ordering::SeqCst);
        (self.progress)(Progress {
            total: self.total,
            succeeded: self.succeeded.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
        });
        Ok(true)
    }
}
