//! `tenant_migration_checksums`: each tenant migration version's checksum
//! as first applied anywhere in the fleet.
//!
//! Rules:
//! - a version is recorded only once a template holds it (after a server's
//!   template was migrated), and never changed: the first applied wins;
//! - a set of migrations whose file for a recorded version differs is
//!   refused (`MigrationChecksumMismatch`, naming the version), at start-up
//!   and when a fleet run is created or resumed. Checking again after
//!   recording catches two builds that started at once: the one whose
//!   record lost is refused.

use super::{Catalog, CatalogError};
use crate::domain::MigrationChecksum;

impl Catalog {
    /// Records `applied` (versions a template now holds); a version already
    /// recorded keeps its first checksum.
    pub async fn record_migration_checksums(
        &self,
        applied: &[MigrationChecksum],
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare(
                "INSERT INTO tenant_migration_checksums (version, name, checksum)
                 VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING",
            )
            .await?;
        for m in applied {
            client
                .execute(&statement, &[&m.version, &m.name, &m.checksum])
                .await?;
        }
        Ok(())
    }

    /// Refuses `set` when its file for a recorded version differs, naming
    /// the lowest such version.
    pub async fn check_migration_checksums(
        &self,
        set: &[MigrationChecksum],
    ) -> Result<(), CatalogError> {
        let recorded = self
            .read_all(
                "SELECT version, checksum FROM tenant_migration_checksums ORDER BY version",
                &[],
                |r| (r.get::<_, i32>(0), r.get::<_, String>(1)),
            )
            .await?;
        for (version, applied) in recorded {
            let Some(ours) = set.iter().find(|m| m.version == version) else {
                continue;
            };
            if ours.checksum != applied {
                return Err(CatalogError::MigrationChecksumMismatch {
                    version,
                    name: ours.name.clone(),
                    applied,
                    found: ours.checksum.clone(),
                });
            }
        }
        Ok(())
    }
}
