//! Runs the `tenant_template/` migrations with refinery against one database.
//! An advisory lock inside that database keeps two runners (processes or
//! replicas) from migrating it at once; each migration runs in its own
//! transaction, so a failure leaves the database on its last good version.

use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("tenant_template/migrations");
}

/// Advisory lock key, taken inside the tenant database being migrated ("tpmigrat").
pub const TENANT_MIGRATION_LOCK: i64 = 0x7470_6d69_6772_6174;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect to the tenant database")]
    Connect(#[source] tokio_postgres::Error),
    #[error("tenant database query failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("migration failed")]
    Refinery(#[from] refinery::Error),
}

/// The outcome of one database's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub from_version: i32,
    pub to_version: i32,
    pub applied: usize,
}

/// The newest version this binary carries.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Migrates the database `config` points at to the newest version.
#[tracing::instrument(skip_all, fields(db = config.get_dbname().unwrap_or("")))]
pub async fn migrate_database(config: &tokio_postgres::Config) -> Result<Outcome, MigrateError> {
    let (mut client, connection) = config.connect(NoTls).await.map_err(MigrateError::Connect)?;
    let driver = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&TENANT_MIGRATION_LOCK])
        .await?;
    let from_version = current_version(&client).await?;
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run_async(&mut client)
        .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&TENANT_MIGRATION_LOCK])
        .await;
    let report = report?;
    let to_version = current_version(&client).await?;
    // Close the session now: a template must have no connections when cloned.
    drop(client);
    let _ = driver.await;
    Ok(Outcome {
        from_version,
        to_version,
        applied: report.applied_migrations().len(),
    })
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
