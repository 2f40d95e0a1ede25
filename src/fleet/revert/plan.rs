//! Planning a run's revert: checks every down migration the plan needs,
//! then records the revert and its items in one transaction
//! (`Catalog::create_revert`). A second request while one is unfinished
//! joins it.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::RevertOptions;
use crate::catalog::RevertRecord;
use crate::fleet::{Fleet, FleetError};

impl Fleet {
    /// The revert of `run`: the unfinished one, or a new one, planned.
    pub(super) async fn plan_revert(
        &self,
        run: Uuid,
        options: &RevertOptions,
    ) -> Result<RevertRecord, FleetError> {
        if !(1..=256).contains(&options.concurrency) {
            return Err(FleetError::BadConcurrency);
        }
        let record = self
            .catalog
            .get_run(run)
            .await?
            .ok_or(FleetError::NotFound)?;
        if matches!(record.state.as_str(), "pending" | "running") {
            return Err(FleetError::StillRunning(record.state));
        }
        if let Some(open) = self.catalog.open_revert(run).await? {
            return Ok(open);
        }
        self.catalog
            .check_migration_checksums(&self.migrations().checksums())
            .await?;
        // Every version the plan undoes: from the run's target back to each
        // pre-run version the run moved a tenant from.
        let moved = self
            .catalog
            .run_items(run, Some("succeeded"), i64::MAX)
            .await?;
        let back_to: BTreeSet<i32> = moved
            .iter()
            .filter_map(|i| Some((i.from_version?, i.to_version?)))
            .filter(|(from, to)| to > from)
            .map(|(from, _)| from)
            .collect();
        for to in back_to {
            self.migrations()
                .check_revert(record.target_version, to, options.accept_data_loss)?;
        }
        let concurrency = i32::try_from(options.concurrency).unwrap_or(1);
        let created = self
            .catalog
            .create_revert(run, options.accept_data_loss, concurrency)
            .await?;
        match created {
            Some(revert) => Ok(revert),
            // Another request recorded one first: join it.
            None => self
                .catalog
                .open_revert(run)
                .await?
                .ok_or(FleetError::NotFound),
        }
    }
}
