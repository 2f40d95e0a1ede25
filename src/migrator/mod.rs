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

mod lock_safety;

pub use lock_safety::LockPolicy;

// Revert: down migrations beside their ups, and undoing versions.
mod down;
mod revert;

pub use down::{DataLoss, DataLossCheck, DownMigration, DownSet};

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
    #[error("the migration waited longer than the lock timeout {attempts} times: a long transaction holds a lock it needs")]
    LockTimeout {
        attempts: u32,
        #[source]
        source: Box<MigrateError>,
    },
    #[error("cannot read tenant migrations from {path}: {source}")]
    Load {
        path: String,
        #[source]
        source: refinery::Error,
    },
    // Revert (`down.rs`, `revert.rs`).
    #[error("down migration {file} is refused: {reason}")]
    DownFile { file: String, reason: String },
    #[error("version {version} has no down migration (V{version}__<name>.down.sql), so it cannot be reverted")]
    NoDownMigration { version: i32 },
    #[error("{file} line {line} loses data ({rule}); revert with accept_data_loss to run it")]
    DataLossNotAccepted {
        file: String,
        rule: String,
        line: u32,
    },
}

impl MigrateError {
    /// The code a tenant's migration fails with: a lock timeout is the
    /// tenant's own traffic in the way (retry later); the rest is internal.
    pub fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code::ErrorCode;
        match self {
            Self::LockTimeout { .. } => ErrorCode::MigrationLockTimeout,
            Self::NoDownMigration { .. } => ErrorCode::NoDownMigration,
            Self::DataLossNotAccepted { .. } => ErrorCode::DataLossNotAccepted,
            _ => ErrorCode::InternalError,
        }
    }
}

/// The tenant migrations this process applies: the ones embedded at build
/// time, or a directory read at start-up (`migrations.tenant_dir`).
#[derive(Clone)]
pub struct MigrationSet {
    migrations: Arc<Vec<Migration>>,
    lock: LockPolicy,
    /// The down migrations beside them (revert).
    downs: Arc<DownSet>,
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

/// One migration's file name and text (for the linter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSource {
    pub version: i32,
    pub file: String,
    pub sql: String,
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
        let migrations = embedded::migrations::runner().get_migrations().clone();
        // The built-in downs are checked by a unit test (`down.rs`).
        let downs =
            DownSet::embedded(&migrations).expect("the built-in down migrations match their ups");
        Self {
            migrations: Arc::new(migrations),
            lock: LockPolicy::default(),
            downs: Arc::new(downs),
        }
    }

    /// `V<n>__name.sql` files of `dir`, in version order, with the
    /// `V<n>__name.down.sql` beside them.
    pub fn from_dir(dir: &Path) -> Result<Self, MigrateError> {
        let migrations =
            refinery::load_sql_migrations(dir).map_err(|source| MigrateError::Load {
                path: dir.display().to_string(),
                source,
            })?;
        let downs = DownSet::from_dir(dir, &migrations)?;
        Ok(Self {
            migrations: Arc::new(migrations),
            lock: LockPolicy::default(),
            downs: Arc::new(downs),
        })
    }

    /// The same set, with `check` telling which down steps lose data (the
    /// linter's call; see `down.rs`).
    pub fn with_data_loss_check(mut self, check: DataLossCheck) -> Self {
        self.downs = Arc::new((*self.downs).clone().with_data_loss_check(check));
        self
    }

    /// The same set, migrating under `lock` (the `migrations.lock_*` settings).
    pub fn with_lock_policy(mut self, lock: LockPolicy) -> Self {
        self.lock = lock;
        self
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

    // Lint (src/lint) reads each pending file's text.
    /// The file name (`V<n>__<name>.sql`) and SQL of the migrations above
    /// `version` (and at most `target`), in version order.
    pub fn sources(&self, version: i32, target: Option<i32>) -> Vec<MigrationSource> {
        let mut sources: Vec<MigrationSource> = self
            .migrations
            .iter()
            .filter(|m| m.version() > version && target.is_none_or(|t| m.version() <= t))
            .map(|m| MigrationSource {
                version: m.version(),
                file: format!("V{}__{}.sql", m.version(), m.name()),
                sql: m.sql().unwrap_or_default().to_string(),
            })
            .collect();
        sources.sort_by_key(|m| m.version);
        sources
    }

    /// The down files of the same range, in version order: linted with
    /// the ups, as a revert of the run would run them.
    pub fn down_sources(&self, version: i32, target: Option<i32>) -> Vec<MigrationSource> {
        self.sources(version, target)
            .into_iter()
            .filter_map(|up| {
                let down = self.downs.get(up.version)?;
                Some(MigrationSource {
                    version: up.version,
                    file: down.file(),
                    sql: down.sql.clone(),
                })
            })
            .collect()
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
        // Simple queries here and below: one round trip each, where a
        // prepared statement takes two, for every tenant of a fleet run.
        client
            .batch_execute(&format!("SELECT pg_advisory_lock({TENANT_MIGRATION_LOCK})"))
            .await?;
        let result = self.migrate_safely(&mut client, target).await;
        let _ = client
            .batch_execute(&format!(
                "SELECT pg_advisory_unlock({TENANT_MIGRATION_LOCK})"
            ))
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

    /// Runs the pending migrations under the lock policy: a migration that
    /// hit `lock_timeout` is tried again after a backoff, from the last
    /// version that committed, until the retries run out.
    async fn migrate_safely(
        &self,
        client: &mut tokio_postgres::Client,
        target: Option<i32>,
    ) -> Result<(i32, i32, usize), MigrateError> {
        let from = current_version(client).await?;
        if self.pending(from, target).is_empty() {
            return Ok((from, from, 0));
        }
        self.lock.apply(client).await?;
        let mut attempt = 0;
        loop {
            match self.migrate_locked(client, target).await {
                Ok(to) => {
                    // Counted over every attempt: earlier ones may have committed some.
                    let applied = self
                        .migrations
                        .iter()
                        .filter(|m| m.version() > from && m.version() <= to)
                        .count();
                    return Ok((from, to, applied));
                }
                Err(e) if lock_safety::is_lock_timeout(&e) && attempt < self.lock.retries => {
                    attempt += 1;
                    let wait = self.lock.backoff(attempt);
                    tracing::info!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "tenant migration hit its lock timeout; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) if lock_safety::is_lock_timeout(&e) => {
                    return Err(MigrateError::LockTimeout {
                        attempts: attempt + 1,
                        source: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs refinery once (pending migrations were found by the caller);
    /// the version it reached.
    async fn migrate_locked(
        &self,
        client: &mut tokio_postgres::Client,
        target: Option<i32>,
    ) -> Result<i32, MigrateError> {
        self.runner(target).run_async(client).await?;
        history_max(client).await
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
    let exists = first_value(
        client
            .simple_query("SELECT to_regclass('refinery_schema_history') IS NOT NULL")
            .await?,
    );
    if exists.as_deref() != Some("t") {
        return Ok(0);
    }
    history_max(client).await
}

/// The highest version in refinery's history table, which exists.
async fn history_max(client: &tokio_postgres::Client) -> Result<i32, MigrateError> {
    let max = first_value(
        client
            .simple_query("SELECT coalesce(max(version), 0) FROM refinery_schema_history")
            .await?,
    );
    Ok(max.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The first column of the first row of a simple query's answer, as text.
fn first_value(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> Option<String> {
    messages.into_iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}
