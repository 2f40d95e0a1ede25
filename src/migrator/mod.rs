//! Runs the tenant migrations with refinery on one database
//! (`migrate_database`); `fleet` runs it across tenants. An advisory lock inside each tenant database
//! keeps two runners (processes or replicas) from migrating it at once; each
//! migration runs in its own transaction, so a failure leaves the database on
//! its last good version.
//!
//! Rule: `migrate_database` closes its session, and waits for its
//! connection to end, before it returns: a template it migrated has no
//! session left when it is cloned.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use refinery::{Migration, Runner, Target};
use serde::Serialize;

use crate::domain::MigrationChecksum;

mod embedded {
    refinery::embed_migrations!("tenant_template/migrations");
}

/// Advisory lock key, taken inside the tenant database being migrated ("tpmigrat").
pub const TENANT_MIGRATION_LOCK: i64 = 0x7470_6d69_6772_6174;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum MigrateError {
    #[error("cannot connect to the tenant database")]
    Connect(#[source] tokio_postgres::Error),
    #[error("tenant database query failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Refinery(#[from] refinery::Error),
    #[error("cannot read tenant migrations from {path}: {source}")]
    Load {
        path: String,
        #[source]
        source: refinery::Error,
    },
}

/// The tenant migrations this process applies: the ones embedded at build
/// time, or a directory read at start-up (`migrations.tenant_dir`).
#[derive(Clone)]
pub struct MigrationSet {
    migrations: Arc<Vec<Migration>>,
}

impl std::fmt::Debug for MigrationSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MigrationSet(latest V{})", self.latest_version())
    }
}

/// A migration not yet applied to a database.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PendingMigration {
    pub version: i32,
    pub name: String,
}

/// The outcome of one database's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub from_version: i32,
    pub to_version: i32,
    pub applied: usize,
    pub duration_ms: u64,
}

impl MigrationSet {
    pub fn embedded() -> Self {
        Self {
            migrations: Arc::new(embedded::migrations::runner().get_migrations().clone()),
        }
    }

    /// `V<n>__name.sql` files of `dir`, in version order.
    pub fn from_dir(dir: &Path) -> Result<Self, MigrateError> {
        let migrations =
            refinery::load_sql_migrations(dir).map_err(|source| MigrateError::Load {
                path: dir.display().to_string(),
                source,
            })?;
        Ok(Self {
            migrations: Arc::new(migrations),
        })
    }

    /// The newest version in the set.
    pub fn latest_version(&self) -> i32 {
        self.migrations
            .iter()
            .map(|m| m.version())
            .max()
            .unwrap_or(0)
    }

    /// Every migration's checksum, in version order.
    pub fn checksums(&self) -> Vec<MigrationChecksum> {
        let mut all: Vec<MigrationChecksum> = self
            .migrations
            .iter()
            .map(|m| MigrationChecksum {
                version: m.version(),
                name: m.name().to_string(),
                checksum: format!("{:016x}", m.checksum()),
            })
            .collect();
        all.sort_by_key(|m| m.version);
        all
    }

    /// Migrations above `version` (and at most `target`).
    pub fn pending(&self, version: i32, target: Option<i32>) -> Vec<PendingMigration> {
        let mut pending: Vec<PendingMigration> = self
            .migrations
            .iter()
            .filter(|m| m.version() > version && target.is_none_or(|t| m.version() <= t))
            .map(|m| PendingMigration {
                version: m.version(),
                name: m.name().to_string(),
            })
            .collect();
        pending.sort_by_key(|m| m.version);
        pending
    }

    fn runner(&self, target: Option<i32>) -> Runner {
        let runner = Runner::new(&self.migrations).set_abort_divergent(true);
        match target {
            Some(v) => runner.set_target(Target::Version(v)),
            None => runner,
        }
    }

    /// Migrates the database `config` points at, to `target` or the newest
    /// version. Waits while another runner holds the database's lock.
    #[tracing::instrument(skip_all, fields(db = config.get_dbname().unwrap_or("")))]
    pub async fn migrate_database(
        &self,
        config: &crate::pg::PgConfig,
        target: Option<i32>,
    ) -> Result<Outcome, MigrateError> {
        let started = Instant::now();
        let (mut client, connection) = config.connect().await.map_err(MigrateError::Connect)?;
        let driver = tokio::spawn(connection);
        client
            .execute("SELECT pg_advisory_lock($1)", &[&TENANT_MIGRATION_LOCK])
            .await?;
        let result = self.migrate_locked(&mut client, target).await;
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&TENANT_MIGRATION_LOCK])
            .await;
        // Close the session now: a template must have no connections when cloned.
        drop(client);
        let _ = driver.await;
        crate::telemetry::metrics::record_operation("database_migrate", started, result.is_ok());
        let (from_version, to_version, applied) = result?;
        Ok(Outcome {
            from_version,
            to_version,
            applied,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }

    async fn migrate_locked(
        &self,
        client: &mut tokio_postgres::Client,
        target: Option<i32>,
    ) -> Result<(i32, i32, usize), MigrateError> {
        let from = current_version(client).await?;
        // Up to date: skip refinery's own bookkeeping queries, the common case
        // of a fleet sweep.
        if self.pending(from, target).is_empty() {
            return Ok((from, from, 0));
        }
        let report = self.runner(target).run_async(client).await?;
        let to = current_version(client).await?;
        Ok((from, to, report.applied_migrations().len()))
    }

    /// The version of a database and what would be applied, without applying it.
    pub async fn inspect(
        &self,
        config: &crate::pg::PgConfig,
        target: Option<i32>,
    ) -> Result<(i32, Vec<PendingMigration>), MigrateError> {
        let (client, connection) = config.connect().await.map_err(MigrateError::Connect)?;
        let driver = tokio::spawn(connection);
        let version = current_version(&client).await;
        drop(client);
        let _ = driver.await;
        let version = version?;
        Ok((version, self.pending(version, target)))
    }
}

/// The highest applied version, 0 for a database refinery has not touched.
pub async fn current_version(client: &tokio_postgres::Client) -> Result<i32, MigrateError> {
    // Two statements: a query naming a missing table would not even parse.
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0)::int FROM refinery_schema_history",
            &[],
        )
        .await?;
    Ok(row.get(0))
}
