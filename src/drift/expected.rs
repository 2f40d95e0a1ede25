//! The expected schema of each version, and checking a tenant against it.
//!
//! Rules:
//! - The expected snapshot of a version is built at most once per process,
//!   and once per fleet while the migration set up to that version is the
//!   same: a process looks in the catalog first (`expected_schemas`) and
//!   reuses the row whose checksum is its set's; otherwise it builds it in a
//!   scratch database on the server of the tenant being checked (the
//!   provisioner's, dropped after, swept if a crash left it) and stores it.
//! - Concurrent checks of one version wait for one build; a failed build is
//!   not remembered, so the next check tries again.
//! - A check opens no tenant session until the expected snapshot is there,
//!   then one, closed before it returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{describe, diff, DriftCheck, DriftError, SchemaSnapshot};
use crate::catalog::{Catalog, DbServer};
use crate::domain::DbName;
use crate::migrator::MigrationSet;
use crate::pg::PgConfig;
use crate::provisioner::Provisioner;

/// The expected schema of one version.
#[derive(Debug)]
pub struct ExpectedSchema {
    pub version: i32,
    pub snapshot: SchemaSnapshot,
    pub fingerprint: String,
}

/// Checks tenant databases against the expected schema of their version.
#[derive(Clone)]
pub struct Inspector {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Catalog,
    provisioner: Provisioner,
    /// One cell per version: its first caller builds, the others wait.
    versions: Mutex<HashMap<i32, Arc<OnceCell<Arc<ExpectedSchema>>>>>,
    /// Scratch databases this process has built expected schemas in.
    builds: AtomicU64,
}

impl Inspector {
    pub fn new(catalog: Catalog, provisioner: Provisioner) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalog,
                provisioner,
                versions: Mutex::default(),
                builds: AtomicU64::new(0),
            }),
        }
    }

    /// How many expected schemas this process built in a scratch database
    /// (rather than found in memory or in the catalog).
    pub fn builds(&self) -> u64 {
        self.inner.builds.load(Ordering::Relaxed)
    }

    /// Compares the tenant database `db` on `server` with the expected
    /// schema of `version`.
    #[tracing::instrument(skip_all, fields(db = %db, version))]
    pub async fn check(
        &self,
        server: &DbServer,
        db: &DbName,
        version: i32,
    ) -> Result<DriftCheck, DriftError> {
        let started = Instant::now();
        let result = self.check_inner(server, db, version).await;
        crate::telemetry::metrics::record_operation("drift_check", started, result.is_ok());
        result
    }

    async fn check_inner(
        &self,
        server: &DbServer,
        db: &DbName,
        version: i32,
    ) -> Result<DriftCheck, DriftError> {
        let expected = self.expected(server, version).await?;
        let config = self.inner.provisioner.admin_config(server, db.as_str())?;
        let actual = describe_at(config).await?;
        let diff = diff(&expected.snapshot, &actual);
        Ok(DriftCheck {
            in_sync: diff.is_empty(),
            version,
            fingerprint: actual.fingerprint(),
            expected_fingerprint: expected.fingerprint.clone(),
            diff,
        })
    }

    /// The expected schema of `version`: from memory, the catalog, or built
    /// on `server`.
    pub async fn expected(
        &self,
        server: &DbServer,
        version: i32,
    ) -> Result<Arc<ExpectedSchema>, DriftError> {
        let latest = self.inner.provisioner.migrations().latest_version();
        if !(0..=latest).contains(&version) {
            return Err(DriftError::UnknownVersion { version, latest });
        }
        let cell = {
            let mut versions = self.inner.versions.lock().expect("expected schemas");
            versions.entry(version).or_default().clone()
        };
        cell.get_or_try_init(|| self.load_or_build(server, version))
            .await
            .cloned()
    }

    async fn load_or_build(
        &self,
        server: &DbServer,
        version: i32,
    ) -> Result<Arc<ExpectedSchema>, DriftError> {
        let checksum = set_checksum(self.inner.provisioner.migrations(), version);
        if let Some(row) = self.inner.catalog.expected_schema(version).await? {
            if row.checksum == checksum {
                match serde_json::from_value::<SchemaSnapshot>(row.snapshot) {
                    Ok(snapshot) if snapshot.fingerprint() == row.fingerprint => {
                        return Ok(Arc::new(ExpectedSchema {
                            version,
                            snapshot,
                            fingerprint: row.fingerprint,
                        }));
                    }
                    // Written by a build whose snapshot form differs: ours replaces it.
                    _ => tracing::info!(version, "the stored expected schema is of another form"),
                }
            }
        }
        let started = Instant::now();
        let built = self
            .inner
            .provisioner
            .with_expected_database(server, version, describe_at)
            .await;
        crate::telemetry::metrics::record_operation(
            "drift_expected_build",
            started,
            matches!(built, Ok(Ok(_))),
        );
        let snapshot = built??;
        self.inner.builds.fetch_add(1, Ordering::Relaxed);
        let fingerprint = snapshot.fingerprint();
        let stored = serde_json::to_value(&snapshot).expect("a snapshot serializes");
        self.inner
            .catalog
            .store_expected_schema(version, &checksum, &fingerprint, &stored)
            .await?;
        tracing::info!(version, %fingerprint, "built the expected schema");
        Ok(Arc::new(ExpectedSchema {
            version,
            snapshot,
            fingerprint,
        }))
    }
}

/// Describes the database `config` names, over one session closed (and
/// the server's end of it awaited) before it returns.
async fn describe_at(mut config: PgConfig) -> Result<SchemaSnapshot, DriftError> {
    config.application_name("tenant-plane-drift");
    // A closing session: once its driver ends the backend is gone, so the
    // scan's next check never runs beside it (at most 2 per server).
    let (client, connection) = config
        .connect_closing()
        .await
        .map_err(DriftError::Connect)?;
    let driver = tokio::spawn(connection);
    let described = describe(&client).await;
    drop(client);
    let _ = driver.await;
    described
}

/// SHA-256 (hex) of the set's `version name checksum` lines up to
/// `version`: what an expected schema of `version` was built from.
pub(super) fn set_checksum(set: &MigrationSet, version: i32) -> String {
    let mut hash = Sha256::new();
    for m in set.checksums().iter().filter(|m| m.version <= version) {
        hash.update(format!("{} {} {}\n", m.version, m.name, m.checksum));
    }
    hex::encode(hash.finalize())
}
