//! The control plane's own database: tenants, placement, configuration,
//! operations, idempotency keys and audit. This module never touches a tenant
//! database.
//!
//! Rules:
//! - It creates only its own database (on first start, `connect`); every
//!   other CREATE or DROP DATABASE or ROLE is the provisioner's.
//! - It never connects to a tenant database: it holds intent, and whoever
//!   acts on a server (the provisioner, the router) reads it from here.

mod absent;
mod api_keys;
mod backups;
mod console_sessions;
// Drift state and fleet drift scans (issue 29, drift plumbing).
mod drift;
mod drift_scans;
// Drift core: the expected tenant schema per version (issue 29).
mod error;
mod events;
mod expected_schemas;
mod fencing;
mod gauges;
mod idempotency;
// Each tenant's own identity provider, and its first admin.
mod identity_providers;
mod installation;
mod long_operations;
// Lint: where a fleet run's pending migrations begin.
mod lowest_version;
mod migration_checksums;
mod migration_history;
mod migration_items;
mod migration_runs;
// Revert: the ledger of a run's revert (and one tenant's).
mod migration_revert_items;
mod migration_reverts;
mod moves;
mod op_kind;
mod op_state;
mod operations;
mod placement;
mod quotas;
mod read;
mod restores;
mod retention;
mod schema;
mod sealed;
mod servers;
mod tenants;
mod usage;
mod usage_report;
// Each server's pgBackRest archive (point-in-time restore).
mod wal_archives;

use std::time::Duration;

use deadpool_postgres::{Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::error::SqlState;

pub use absent::AbsentTenantGuard;
pub use api_keys::{ApiKeyRecord, ListedKey, Minted};
pub use backups::{BackupReason, BackupRecord};
pub use wal_archives::{wal_archive_purpose, StoredArchive};
// Drift state and fleet drift scans (issue 29, drift plumbing).
pub use drift::{DriftCounts, DriftRecord, DriftState, NewDrift};
pub use drift_scans::{ScanRecord, ScanTarget};
// Drift core: the expected tenant schema per version (issue 29).
pub use error::CatalogError;
pub use events::{DeliveryRecord, EventRecord, EVENTS_CHANNEL};
pub use expected_schemas::ExpectedSchemaRecord;
pub use fencing::{Fence, FenceGuard, Operation, Owner, OWNER_LOCK_CLASS};
pub use gauges::FleetCounts;
pub use idempotency::{IdempotencyClaim, StoredResponse};
pub use identity_providers::{client_secret_purpose, IssuerTaken, ProviderRow};
pub use installation::{installation_tag, quarantine_tag, quarantined_since, tagged_installation};
pub use long_operations::{CancelOutcome, Ending, OperationFilter, CANCELLABLE};
pub use migration_history::HistoryEntry;
pub use migration_items::{ClaimedItem, ItemResult};
pub use migration_reverts::{
    RevertCounts, RevertItem, RevertRecord, DRIFTED, FAILED_IN_RUN, MOVED_ON, NOT_MOVED, PURGED,
};
pub use migration_runs::{ItemRecord, NewRun, RunCounts, RunRecord, VersionCount};
pub use op_kind::OpKind;
pub use op_state::OpState;
pub use operations::{Cascade, Failure, TenantChange};
pub use placement::{MeasuredLoad, PlanTenant, ServerLoad};
pub use quotas::{QuotaBreach, QuotaKind, QuotaReading};
pub use restores::{InPlaceRestore, RestoredSubtenant};
pub use retention::{Pruned, Retention};
pub use schema::{schema_versions, upgrade_schema, CATALOG_SCHEMA_LOCK};
pub use sealed::SealedColumn;
pub use servers::{DbServer, NewServer, ServerPatch, ServerState, CATALOG_SERVER_NAME};
pub use tenants::{role_purpose, NewTenant, TenantFilter, TenantRecord, TenantUpdate};
pub use usage::{month_of, DatabaseSample, MeteredTenant, RequestCounts, Sampled};
pub use usage_report::{Granularity, TopTenant, UsageMetric, UsagePoint};

use crate::config::CatalogSettings;
use crate::pg::PgConfig;
use crate::sql::quote_ident;

/// A pool of catalog connections, plus what is needed to open a dedicated one.
#[derive(Clone)]
pub struct Catalog {
    pool: Pool,
    config: PgConfig,
}

impl Catalog {
    /// Creates the catalog database if it does not exist yet, then builds the pool.
    /// It does not upgrade the schema: call [`upgrade_schema`] once per start-up.
    pub async fn connect(
        url: &SecretString,
        settings: &CatalogSettings,
    ) -> Result<Self, CatalogError> {
        let mut config = PgConfig::parse(url.expose_secret())?;
        config.tls().check()?;
        let timeout = Duration::from_secs(settings.connect_timeout_secs);
        config.connect_timeout(timeout);
        config.application_name("tenant-plane");
        ensure_database(&config).await?;
        let manager = config.manager(RecyclingMethod::Fast);
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()?;
        Ok(Self { pool, config })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The connection settings of the catalog (host, port, user, database, TLS).
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// A connection outside the pool, for session state such as advisory locks.
    pub async fn dedicated_connection(&self) -> Result<tokio_postgres::Client, CatalogError> {
        connect(&self.config).await
    }

    /// One round trip, for readiness checks. A pooled session that the
    /// server ended (a restart, a terminated backend) is thrown away and the
    /// next one tried, so readiness reflects the server, not a stale pool.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        let mut last = None;
        for _ in 0..=self.pool.status().max_size {
            let client = self.pool.get().await?;
            match client.simple_query("SELECT 1").await {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.is_closed() || e.code().is_some_and(|c| c.code().starts_with("57P")) =>
                {
                    let _ = deadpool_postgres::Object::take(client);
                    last = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(CatalogError::from(last.expect("at least one attempt")))
    }
}

/// Opens one connection and drives it on the runtime.
pub(crate) async fn connect(config: &PgConfig) -> Result<tokio_postgres::Client, CatalogError> {
    let (client, connection) = config.connect().await.map_err(CatalogError::Connect)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "catalog connection closed");
        }
    });
    Ok(client)
}

/// Creates the configured database when the server says it does not exist.
/// Two processes racing here are fine: the loser sees `duplicate_database`, or
/// a unique violation on `pg_database` when both got past the existence check.
async fn ensure_database(config: &PgConfig) -> Result<(), CatalogError> {
    match connect(config).await {
        Ok(_) => return Ok(()),
        Err(CatalogError::Connect(e)) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {}
        Err(e) => return Err(e),
    }
    let dbname = config
        .get_dbname()
        .or_else(|| config.get_user())
        .unwrap_or("postgres")
        .to_string();
    let mut admin = config.clone();
    admin.dbname("postgres");
    let client = connect(&admin).await?;
    tracing::info!(database = %dbname, "creating the catalog database");
    match client
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&dbname)))
        .await
    {
        Ok(()) => Ok(()),
        Err(e)
            if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
        {
            Ok(())
        }
        Err(e) => Err(CatalogError::Query(e)),
    }
}
