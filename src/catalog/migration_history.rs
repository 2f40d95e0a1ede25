//! One tenant's migration history: its items across fleet runs, newest first.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::TenantId;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub run_id: Uuid,
    /// The item's state in that run: pending, running, succeeded, failed or skipped.
    pub state: String,
    pub canary: bool,
    pub from_version: Option<i32>,
    pub to_version: Option<i32>,
    /// Migrations applied.
    pub applied: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: Option<i32>,
    pub run_created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Catalog {
    pub async fn migration_history(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, CatalogError> {
        self.read_all(
            "SELECT i.run_id, i.state, i.canary, i.from_version, i.to_version, i.applied,
                    i.error, i.duration_ms, r.created_at, i.finished_at
               FROM migration_items i JOIN migration_runs r ON r.id = i.run_id
              WHERE i.tenant_id = $1
              ORDER BY r.created_at DESC LIMIT $2",
            &[&tenant.as_uuid(), &limit],
            entry_from_row,
        )
        .await
    }
}

fn entry_from_row(r: &Row) -> HistoryEntry {
    HistoryEntry {
        run_id: r.get(0),
        state: r.get(1),
        canary: r.get(2),
        from_version: r.get(3),
        to_version: r.get(4),
        applied: r.get(5),
        error: r.get(6),
        duration_ms: r.get(7),
        run_created_at: r.get(8),
        finished_at: r.get(9),
    }
}
