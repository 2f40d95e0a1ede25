//! A fleet run's revert: the tenants the run moved forward, and only those,
//! taken back to the version the run found them at, with the down
//! migrations, as an operation (`fleet_revert`, its subject the revert)
//! with its own ledger (`migration_reverts`).
//!
//! Rules:
//! - Planned once, at creation (`plan.rs`): every down the plan needs is
//!   checked first (a missing one: `no_down_migration`; a destructive one
//!   without `accept_data_loss`: `data_loss_not_accepted`), before anything
//!   is recorded or runs.
//! - A tenant is reverted only under its operation lock, and only after
//!   re-checking under that lock that the catalog still records it at the
//!   run's target and its database really is there (`worker.rs`): a tenant
//!   moved on meanwhile is skipped with the reason, never reverted.
//! - Never twice: each version's down and the removal of its history row
//!   commit together (`migrator::revert`), and a revert aims at a version,
//!   so a tenant found at its pre-run version is recorded as reverted with
//!   nothing run. A revert killed part-way is taken over from its ledger
//!   (`launch.rs`), as a fleet run is.

mod commands;
mod launch;
mod plan;
mod worker;

pub use commands::LaunchedRevert;

use serde::Serialize;

use crate::catalog::{RevertCounts, RevertItem, RevertRecord};

/// What a revert request asks.
#[derive(Debug, Clone, Copy)]
pub struct RevertOptions {
    /// Run down steps the linter calls destructive (a dropped table or column).
    pub accept_data_loss: bool,
    /// Tenants reverted at once.
    pub concurrency: usize,
}

impl Default for RevertOptions {
    fn default() -> Self {
        Self {
            accept_data_loss: false,
            concurrency: 4,
        }
    }
}

/// A revert with its counts and its items (the first 1000, in the run's
/// order): those reverted, and the rest with their reason.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevertSummary {
    pub revert: RevertRecord,
    pub counts: RevertCounts,
    pub items: Vec<RevertItem>,
}

/// The items a summary lists.
const SUMMARY_ITEMS: i64 = 1000;

impl super::Fleet {
    pub async fn revert_summary(
        &self,
        revert: uuid::Uuid,
    ) -> Result<RevertSummary, super::FleetError> {
        let record = self
            .catalog
            .get_revert(revert)
            .await?
            .ok_or(super::FleetError::RevertNotFound)?;
        Ok(RevertSummary {
            counts: self.catalog.revert_counts(revert).await?,
            items: self
                .catalog
                .revert_items(revert, None, SUMMARY_ITEMS)
                .await?,
            revert: record,
        })
    }
}
