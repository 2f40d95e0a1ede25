//! `expected_schemas`: the expected tenant schema of each migration
//! version, as drift detection built it, so a fleet builds it once.
//!
//! Rules:
//! - a row is keyed by version and carries the checksum of the migration
//!   set up to that version; a reader uses it only when that checksum is
//!   its own set's (the caller compares);
//! - a store replaces the row of its version (the newest build wins): two
//!   builds of one set agree, and a different set's row is stale for it.

use chrono::{DateTime, Utc};

use super::{Catalog, CatalogError};

/// One version's expected schema as stored.
#[derive(Debug, Clone)]
pub struct ExpectedSchemaRecord {
    pub version: i32,
    pub checksum: String,
    pub fingerprint: String,
    /// The snapshot, in the form drift detection serializes it.
    pub snapshot: serde_json::Value,
    pub built_at: DateTime<Utc>,
}

impl Catalog {
    /// The stored expected schema of `version`, if any.
    pub async fn expected_schema(
        &self,
        version: i32,
    ) -> Result<Option<ExpectedSchemaRecord>, CatalogError> {
        self.read_opt(
            "SELECT version, checksum, fingerprint, snapshot, built_at
               FROM expected_schemas WHERE version = $1",
            &[&version],
            |r| ExpectedSchemaRecord {
                version: r.get(0),
                checksum: r.get(1),
                fingerprint: r.get(2),
                snapshot: r.get(3),
                built_at: r.get(4),
            },
        )
        .await
    }

    /// Stores (or replaces) the expected schema of `version`.
    pub async fn store_expected_schema(
        &self,
        version: i32,
        checksum: &str,
        fingerprint: &str,
        snapshot: &serde_json::Value,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO expected_schemas (version, checksum, fingerprint, snapshot)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (version) DO UPDATE
                    SET checksum = excluded.checksum, fingerprint = excluded.fingerprint,
                        snapshot = excluded.snapshot, built_at = now()",
                &[&version, &checksum, &fingerprint, snapshot],
            )
            .await?;
        Ok(())
    }
}
