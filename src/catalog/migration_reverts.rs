//! The revert ledger: `migration_reverts` and `migration_revert_items`.
//!
//! Rules:
//! - A run's revert is planned once, when it is created (`create_revert`):
//!   exactly the run's items that moved their tenant forward (succeeded,
//!   `to_version > from_version`) and whose tenant is still at the run's
//!   target are pending; every other item is listed as skipped, with its
//!   reason. The plan never grows afterwards.
//! - At most one unfinished revert per run (a unique index); a second
//!   request finds the first (`open_revert`).
//! - Items are taken and finished in `migration_revert_items.rs`.
//! - A drifted tenant is one whose current drift record (about the version
//!   the catalog records for it) says `drifted`. A revert brings a tenant
//!   back to a version an older record may be about: that record is made
//!   `unknown` (`forget_drift`), so it is stale, as after a migration.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::TenantId;

/// A revert: of a fleet run (`run_id`), or of one tenant on request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevertRecord {
    pub id: Uuid,
    pub run_id: Option<Uuid>,
    /// pending, running, succeeded, failed or stopped.
    pub state: String,
    pub accept_data_loss: bool,
    pub concurrency: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A revert's items by state.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RevertCounts {
    pub total: i64,
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// One tenant's item in a revert.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevertItem {
    pub revert_id: Uuid,
    pub tenant_id: TenantId,
    /// pending, running, succeeded, failed or skipped.
    pub state: String,
    pub from_version: Option<i32>,
    pub to_version: Option<i32>,
    /// Why it was skipped, or why it failed.
    pub reason: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Skip reasons, as the plan writes them.
pub const MOVED_ON: &str = "moved on by a later run";
pub const DRIFTED: &str = "drifted";
pub const FAILED_IN_RUN: &str = "failed in the run";
pub const PURGED: &str = "purged";
pub const NOT_MOVED: &str = "not moved by the run";

const REVERT_COLUMNS: &str =
    "id, run_id, state, accept_data_loss, concurrency, error, created_at, finished_at";

fn revert_from_row(r: &Row) -> RevertRecord {
    RevertRecord {
        id: r.get("id"),
        run_id: r.get("run_id"),
        state: r.get("state"),
        accept_data_loss: r.get("accept_data_loss"),
        concurrency: r.get("concurrency"),
        error: r.get("error"),
        created_at: r.get("created_at"),
        finished_at: r.get("finished_at"),
    }
}

const ITEM_COLUMNS: &str =
    "revert_id, tenant_id, state, from_version, to_version, reason, finished_at";

pub(super) fn item_from_row(r: &Row) -> RevertItem {
    RevertItem {
        revert_id: r.get("revert_id"),
        tenant_id: TenantId::from(r.get::<_, Uuid>("tenant_id")),
        state: r.get("state"),
        from_version: r.get("from_version"),
        to_version: r.get("to_version"),
        reason: r.get("reason"),
        finished_at: r.get("finished_at"),
    }
}

impl Catalog {
    /// The run's unfinished revert, if one is under way.
    pub async fn open_revert(&self, run: Uuid) -> Result<Option<RevertRecord>, CatalogError> {
        self.read_opt(
            &format!(
                "SELECT {REVERT_COLUMNS} FROM migration_reverts
                  WHERE run_id = $1 AND state IN ('pending', 'running')"
            ),
            &[&run],
            revert_from_row,
        )
        .await
    }

    /// Records a revert of `run` with its plan (see the module's rules).
    /// `None` when another revert of the run was recorded first.
    pub async fn create_revert(
        &self,
        run: Uuid,
        accept_data_loss: bool,
        concurrency: i32,
    ) -> Result<Option<RevertRecord>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let id = Uuid::now_v7();
        let Some(row) = tx
            .query_opt(
                &format!(
                    "INSERT INTO migration_reverts (id, run_id, accept_data_loss, concurrency)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING {REVERT_COLUMNS}"
                ),
                &[&id, &run, &accept_data_loss, &concurrency],
            )
            .await?
        else {
            return Ok(None);
        };
        // Reverted from the run's target (its to_version) back to the
        // version the run found (its from_version).
        tx.execute(
            "INSERT INTO migration_revert_items
                (revert_id, tenant_id, position, state, from_version, to_version, reason)
             SELECT $1, tenant_id, position, CASE WHEN reason IS NULL THEN 'pending' ELSE 'skipped' END,
                    to_version, from_version, reason
               FROM (SELECT i.tenant_id, i.position, i.from_version, i.to_version,
                            CASE
                              WHEN t.purged_at IS NOT NULL OR t.db_name IS NULL THEN $3
                              WHEN i.state = 'failed' THEN $4
                              WHEN i.state <> 'succeeded' OR i.from_version IS NULL
                                   OR i.to_version IS NULL OR i.to_version <= i.from_version THEN $5
                              WHEN t.schema_version <> r.target_version THEN $6
                              WHEN EXISTS (SELECT 1 FROM tenant_drift d
                                            WHERE d.tenant_id = t.id AND d.state = 'drifted'
                                              AND d.version = t.schema_version) THEN $7
                            END AS reason
                       FROM migration_items i
                       JOIN migration_runs r ON r.id = i.run_id
                       JOIN tenants t ON t.id = i.tenant_id
                      WHERE i.run_id = $2) planned",
            &[&id, &run, &PURGED, &FAILED_IN_RUN, &NOT_MOVED, &MOVED_ON, &DRIFTED],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(revert_from_row(&row)))
    }

    /// Records one tenant's revert on request, finished, as its history.
    pub async fn record_tenant_revert(
        &self,
        tenant: TenantId,
        from_version: i32,
        to_version: i32,
        accept_data_loss: bool,
    ) -> Result<(), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let id = Uuid::now_v7();
        tx.execute(
            "INSERT INTO migration_reverts (id, state, accept_data_loss, concurrency, succeeded, finished_at)
             VALUES ($1, 'succeeded', $2, 1, 1, now())",
            &[&id, &accept_data_loss],
        )
        .await?;
        tx.execute(
            "INSERT INTO migration_revert_items
                (revert_id, tenant_id, position, state, from_version, to_version, started_at, finished_at)
             VALUES ($1, $2, 1, 'succeeded', $3, $4, now(), now())",
            &[&id, &tenant.as_uuid(), &from_version, &to_version],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A drift record about `version`, checked before the tenant was
    /// reverted to it, no longer says how the schema stands: unknown.
    pub async fn forget_drift(&self, tenant: TenantId, version: i32) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                super::migration_revert_items::FORGET_DRIFT,
                &[&tenant.as_uuid(), &version],
            )
            .await?;
        Ok(())
    }

    pub async fn get_revert(&self, id: Uuid) -> Result<Option<RevertRecord>, CatalogError> {
        self.read_opt(
            &format!("SELECT {REVERT_COLUMNS} FROM migration_reverts WHERE id = $1"),
            &[&id],
            revert_from_row,
        )
        .await
    }

    /// Sets a revert's state; an ending one also keeps its counts.
    pub async fn set_revert_state(
        &self,
        id: Uuid,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE migration_reverts r SET state = $2, error = $3, updated_at = now(),
                        finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'stopped') THEN now() END,
                        succeeded = c.succeeded, failed = c.failed, skipped = c.skipped
                   FROM (SELECT count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded,
                                count(*) FILTER (WHERE state = 'failed')::int AS failed,
                                count(*) FILTER (WHERE state = 'skipped')::int AS skipped
                           FROM migration_revert_items WHERE revert_id = $1) c
                  WHERE r.id = $1",
                &[&id, &state, &error],
            )
            .await?;
        Ok(())
    }

    pub async fn revert_counts(&self, id: Uuid) -> Result<RevertCounts, CatalogError> {
        let rows = self
            .read_all(
                "SELECT state, count(*) FROM migration_revert_items WHERE revert_id = $1 GROUP BY state",
                &[&id],
                |r| (r.get::<_, String>(0), r.get::<_, i64>(1)),
            )
            .await?;
        let mut counts = RevertCounts::default();
        for (state, n) in rows {
            counts.total += n;
            match state.as_str() {
                "pending" => counts.pending = n,
                "running" => counts.running = n,
                "succeeded" => counts.succeeded = n,
                "failed" => counts.failed = n,
                _ => counts.skipped = n,
            }
        }
        Ok(counts)
    }

    /// Items of a revert in `state` (all when `None`), in the run's order.
    pub async fn revert_items(
        &self,
        id: Uuid,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RevertItem>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {ITEM_COLUMNS} FROM migration_revert_items
                  WHERE revert_id = $1 AND ($2::text IS NULL OR state = $2)
                  ORDER BY position LIMIT $3"
            ),
            &[&id, &state, &limit],
            item_from_row,
        )
        .await
    }

    /// One tenant's revert items, newest first (its migration history).
    pub async fn tenant_reverts(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> Result<Vec<RevertItem>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {ITEM_COLUMNS} FROM migration_revert_items
                  WHERE tenant_id = $1 ORDER BY revert_id DESC LIMIT $2"
            ),
            &[&tenant.as_uuid(), &limit],
            item_from_row,
        )
        .await
    }
}
