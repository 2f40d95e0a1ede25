//! The fleet's shape, for the metrics page: counted in the catalog by a
//! background task, never per scrape.

use super::{Catalog, CatalogError};

/// What the `/metrics` gauges show of the fleet.
#[derive(Debug, Default, Clone)]
pub struct FleetCounts {
    /// (status, tier, tenants), root tenants and subtenants alike.
    pub tenants: Vec<(String, String, i64)>,
    /// (schema version, root tenants with a database).
    pub versions: Vec<(i32, i64)>,
    /// (item state, items) over the migration runs that are running.
    pub run_items: Vec<(String, i64)>,
    pub runs_running: i64,
    /// Root tenants drifted at their version now (drift plumbing).
    pub drifted: i64,
}

impl Catalog {
    pub async fn fleet_counts(&self) -> Result<FleetCounts, CatalogError> {
        let client = self.pool().get().await?;
        let tenants = client
            .query(
                "SELECT status, tier, count(*) FROM tenants WHERE purged_at IS NULL GROUP BY 1, 2",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let versions = client
            .query(
                "SELECT schema_version, count(*) FROM tenants
                  WHERE purged_at IS NULL AND parent_id IS NULL AND db_name IS NOT NULL GROUP BY 1",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let run_items = client
            .query(
                "SELECT i.state, count(*) FROM migration_items i
                   JOIN migration_runs r ON r.id = i.run_id
                  WHERE r.state = 'running' GROUP BY 1",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let runs_running = client
            .query_one(
                "SELECT count(*) FROM migration_runs WHERE state = 'running'",
                &[],
            )
            .await?
            .get(0);
        let drifted = self.drift_counts().await?.drifted;
        Ok(FleetCounts {
            tenants,
            versions,
            run_items,
            runs_running,
            drifted,
        })
    }
}
