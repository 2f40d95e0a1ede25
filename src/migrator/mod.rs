//! The tenant migrations: the set (built in or from a folder), applied with
//! refinery to one database (`apply.rs`), undone with down files
//! (`down.rs`, `revert.rs`); `fleet` runs them across tenants. An advisory
//! lock inside each tenant database keeps two runners (processes or
//! replicas) from migrating it at once; each migration runs in its own
//! transaction, so a failure leaves the database on its last good version.

use std::path::Path;
use std::sync::Arc;

use refinery::{Migration, Runner, Target};
use serde::Serialize;

use crate::domain::MigrationChecksum;

mod lock_safety;

pub use lock_safety::LockPolicy;

// Revert: down migrations beside their ups, and undoing versions.
mod apply;
mod batched;
mod down;
mod revert;

pub use apply::current_version;
pub(crate) use apply::open_session;
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
    Connect(#[source] crate::pg::SessionError),
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

    /// The version of a database and what would be applied, without applying it.
    pub async fn inspect(
        &self,
        config: &crate::pg::PgConfig,
        target: Option<i32>,
    ) -> Result<(i32, Vec<PendingMigration>), MigrateError> {
        let (client, driver) = open_session(config).await?;
        let version = current_version(&client).await;
        drop(client);
        let _ = driver.await;
        let version = version?;
        Ok((version, self.pending(version, target)))
    }
}
