//! The catalog schema, applied with refinery under an advisory lock so that
//! replicas starting together cannot race.

use super::{Catalog, CatalogError};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Advisory lock key that serialises catalog schema upgrades ("tpcatmig").
pub const CATALOG_SCHEMA_LOCK: i64 = 0x7470_6361_746d_6967;

/// Applies every pending catalog schema migration and returns how many ran.
pub async fn upgrade_schema(catalog: &Catalog) -> Result<usize, CatalogError> {
    // A dedicated session: the advisory lock belongs to it, and refinery needs
    // `&mut Client`, which a pooled object does not lend.
    let mut client = catalog.dedicated_connection().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&CATALOG_SCHEMA_LOCK])
        .await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    // Unlock even when the run failed; closing the session would also release it.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&CATALOG_SCHEMA_LOCK])
        .await;
    let report = report?;
    for m in report.applied_migrations() {
        tracing::info!(
            version = m.version(),
            name = m.name(),
            "applied catalog migration"
        );
    }
    Ok(report.applied_migrations().len())
}

/// The catalog migration versions recorded as applied, in order.
pub async fn schema_versions(catalog: &Catalog) -> Result<Vec<i64>, CatalogError> {
    let client = catalog.pool().get().await?;
    let rows = client
        .query(
            "SELECT version::bigint FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
