//! Fleet drift scans (`drift_scans`): one row per scan, whose tenants are
//! those of the fleet not yet recorded under it (`tenant_drift.scan_id`).
//!
//! Rules:
//! - At most one scan runs at a time, across replicas (a unique index on
//!   the running one): `begin_drift_scan` returns the running one instead.
//! - A resumed scan lists only the tenants it has not recorded yet
//!   (`drift_scan_targets`), so no tenant is checked twice by one scan.
//! - A scan's end, with its counts, is written through its operation's
//!   fence.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;

use super::drift::DRIFT_TENANTS;
use super::{Catalog, CatalogError, Fence};
use crate::domain::{DbName, TenantId};

/// A scan as recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScanRecord {
    pub id: Uuid,
    /// running, succeeded, failed or cancelled.
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Tenants the scan covers.
    pub total: i32,
    pub in_sync: i32,
    pub drifted: i32,
    pub unknown: i32,
    pub error: Option<String>,
}

/// A tenant a scan has still to check, with where its database is.
#[derive(Debug, Clone)]
pub struct ScanTarget {
    pub tenant_id: TenantId,
    pub db_server_id: Option<Uuid>,
    pub db_name: DbName,
    pub schema_version: i32,
}

const SCAN_COLUMNS: &str =
    "id, state, started_at, finished_at, total, in_sync, drifted, unknown, error";

fn scan_from_row(r: &Row) -> ScanRecord {
    ScanRecord {
        id: r.get("id"),
        state: r.get("state"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        total: r.get("total"),
        in_sync: r.get("in_sync"),
        drifted: r.get("drifted"),
        unknown: r.get("unknown"),
        error: r.get("error"),
    }
}

/// The fence condition on operation `$op`, generation `$gen`.
fn fenced(op: u8, generation: u8) -> String {
    format!(
        "EXISTS (SELECT 1 FROM operations WHERE id = ${op} AND generation = ${generation}
                  AND state = 'running')"
    )
}

impl Catalog {
    /// Records a new running scan; `Err(id)` names the scan running already.
    pub async fn begin_drift_scan(&self) -> Result<Result<ScanRecord, Uuid>, CatalogError> {
        let client = self.pool().get().await?;
        let inserted = client
            .query_one(
                &format!("INSERT INTO drift_scans (id) VALUES ($1) RETURNING {SCAN_COLUMNS}"),
                &[&Uuid::now_v7()],
            )
            .await;
        match inserted {
            Ok(row) => Ok(Ok(scan_from_row(&row))),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                let row = client
                    .query_opt("SELECT id FROM drift_scans WHERE state = 'running'", &[])
                    .await?;
                match row {
                    Some(r) => Ok(Err(r.get(0))),
                    // It ended in between: the caller may try again.
                    None => Err(CatalogError::TenantBusy),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The unfinished `drift_scan` operation of `scan`, if any.
    pub async fn drift_scan_operation(&self, scan: Uuid) -> Result<Option<Uuid>, CatalogError> {
        self.read_opt(
            "SELECT id FROM operations WHERE kind = 'drift_scan' AND params ->> 'subject' = $1
                AND state IN ('pending', 'queued', 'running')",
            &[&scan.to_string()],
            |r| r.get(0),
        )
        .await
    }

    /// Ends `scan` as failed when its runner died between recording it and
    /// beginning its operation: running for `grace` already, and no
    /// operation ever begun for it. Whether it did.
    pub async fn fail_orphan_drift_scan(
        &self,
        scan: Uuid,
        grace: std::time::Duration,
    ) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let grace = grace.as_secs_f64();
        let n = client
            .execute(
                "UPDATE drift_scans SET state = 'failed', finished_at = now(),
                        error = 'interrupted before its operation began'
                  WHERE id = $1 AND state = 'running'
                    AND started_at < now() - make_interval(secs => $2)
                    AND NOT EXISTS (SELECT 1 FROM operations
                         WHERE kind = 'drift_scan' AND params ->> 'subject' = $1::text)",
                &[&scan, &grace],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn get_drift_scan(&self, id: Uuid) -> Result<Option<ScanRecord>, CatalogError> {
        self.read_opt(
            &format!("SELECT {SCAN_COLUMNS} FROM drift_scans WHERE id = $1"),
            &[&id],
            scan_from_row,
        )
        .await
    }

    /// The newest scan.
    pub async fn last_drift_scan(&self) -> Result<Option<ScanRecord>, CatalogError> {
        self.read_opt(
            &format!(
                "SELECT {SCAN_COLUMNS} FROM drift_scans ORDER BY started_at DESC, id DESC LIMIT 1"
            ),
            &[],
            scan_from_row,
        )
        .await
    }

    /// The tenants `scan` has not recorded yet, in id order.
    pub async fn drift_scan_targets(&self, scan: Uuid) -> Result<Vec<ScanTarget>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT t.id, t.db_server_id, t.db_name, t.schema_version FROM tenants t
                  WHERE {DRIFT_TENANTS} AND NOT EXISTS (SELECT 1 FROM tenant_drift d
                         WHERE d.tenant_id = t.id AND d.scan_id = $1)
                  ORDER BY t.id"
            ),
            &[&scan],
            |r| ScanTarget {
                tenant_id: TenantId::from(r.get::<_, Uuid>(0)),
                db_server_id: r.get(1),
                db_name: DbName::recognise(r.get(2))
                    .expect("tenants.db_name is checked as a DbName"),
                schema_version: r.get(3),
            },
        )
        .await
    }

    /// Tenants `scan` has recorded so far.
    pub async fn drift_scan_checked(&self, scan: Uuid) -> Result<i64, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM tenant_drift WHERE scan_id = $1",
                &[&scan],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Sets how many tenants `scan` covers (fenced).
    pub async fn set_drift_scan_total(
        &self,
        scan: Uuid,
        total: i64,
        fence: Fence,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        let total = i32::try_from(total).unwrap_or(i32::MAX);
        let n = client
            .execute(
                &format!(
                    "UPDATE drift_scans SET total = $4 WHERE id = $1 AND {}",
                    fenced(2, 3)
                ),
                &[&scan, &fence.op, &fence.generation, &total],
            )
            .await?;
        if n == 1 {
            Ok(())
        } else {
            Err(CatalogError::Fenced)
        }
    }

    /// Ends `scan` as `state`, with its counts from what it recorded.
    /// With `fence`, only while that operation is held by it.
    pub async fn finish_drift_scan(
        &self,
        scan: Uuid,
        state: &str,
        error: Option<&str>,
        fence: Option<Fence>,
    ) -> Result<Option<ScanRecord>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!(
                    "WITH c AS (SELECT count(*) FILTER (WHERE state = 'in_sync') AS in_sync,
                                       count(*) FILTER (WHERE state = 'drifted') AS drifted,
                                       count(*) FILTER (WHERE state = 'unknown') AS unknown
                                  FROM tenant_drift WHERE scan_id = $1)
                     UPDATE drift_scans s SET state = $2, error = $3, finished_at = now(),
                            in_sync = c.in_sync, drifted = c.drifted, unknown = c.unknown
                       FROM c
                      WHERE s.id = $1 AND s.state = 'running' AND ($4::uuid IS NULL OR {})
                      RETURNING s.{}",
                    fenced(4, 5),
                    SCAN_COLUMNS.replace(", ", ", s.")
                ),
                &[
                    &scan,
                    &state,
                    &error,
                    &fence.map(|f| f.op),
                    &fence.map(|f| f.generation),
                ],
            )
            .await?;
        Ok(row.as_ref().map(scan_from_row))
    }
}
