//! What the fleet looks like by schema version: the histogram, who is
//! behind the newest version this build knows, and the fleet's counts (for
//! the summary page and the gauges). Queries only.

use serde::Serialize;

use super::{Fleet, FleetError};
use crate::catalog::VersionCount;
use crate::domain::TenantId;

pub use crate::catalog::FleetCounts;

/// At most this many tenants are listed as behind.
const BEHIND_SHOWN: i64 = 1000;

/// Tenants per schema version, and the ones behind the newest.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Versions {
    pub latest_version: i32,
    pub versions: Vec<VersionCount>,
    pub behind: Vec<Behind>,
}

/// A root tenant whose database is behind the newest version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Behind {
    pub id: TenantId,
    pub slug: String,
    pub schema_version: i32,
}

impl Fleet {
    /// The newest tenant schema version this build knows.
    pub fn latest_version(&self) -> i32 {
        self.migrations().latest_version()
    }

    pub async fn versions(&self) -> Result<Versions, FleetError> {
        let latest_version = self.latest_version();
        let versions = self.catalog.version_histogram().await?;
        let behind = self
            .catalog
            .tenants_behind(latest_version, BEHIND_SHOWN)
            .await?
            .into_iter()
            .map(|(id, slug, schema_version)| Behind {
                id,
                slug,
                schema_version,
            })
            .collect();
        Ok(Versions {
            latest_version,
            versions,
            behind,
        })
    }

    /// Tenants by status, tier and version, and the runs at work.
    pub async fn counts(&self) -> Result<FleetCounts, FleetError> {
        Ok(self.catalog.fleet_counts().await?)
    }
}
