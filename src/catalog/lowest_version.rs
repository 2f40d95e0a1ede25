//! The lowest schema version among a fleet run's tenants: where the
//! pending migrations a run may apply begin (lint before a run).

use super::migration_runs::FLEET_TENANTS;
use super::{Catalog, CatalogError};
use crate::domain::Tier;

impl Catalog {
    /// The lowest recorded schema version among the tenants a fleet run of
    /// `tier` (all tiers when `None`) covers; `None` when it covers none.
    pub async fn lowest_fleet_version(
        &self,
        tier: Option<Tier>,
    ) -> Result<Option<i32>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT min(schema_version) FROM tenants
                      WHERE {FLEET_TENANTS} AND ($1::text IS NULL OR tier = $1)"
                ),
                &[&tier.map(Tier::as_str)],
            )
            .await?;
        Ok(row.get(0))
    }
}
