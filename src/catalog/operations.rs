//! `operations`: every lifecycle step is a row, written before its side effect
//! and finished after it, together with the tenant change it makes. A partial
//! unique index allows one unfinished operation per tenant: that row is the
//! per-tenant lock, across replicas and across crashes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::tenants::{tenant_from_row, TenantRecord, TENANT_COLUMNS};
use super::{Catalog, CatalogError};
use crate::domain::{TenantId, TenantStatus, Tier};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    CreateTenant,
    CreateSubtenant,
    Suspend,
    Resume,
    Delete,
    Restore,
    Purge,
    /// A root tenant's database copied to another server.
    Move,
    /// A tenant's database replaced (or a new tenant made) from a backup.
    RestoreBackup,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateTenant => "create_tenant",
            Self::CreateSubtenant => "create_subtenant",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Delete => "delete",
            Self::Restore => "restore",
            Self::Purge => "purge",
            Self::Move => "move",
            Self::RestoreBackup => "restore_backup",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::CreateTenant,
            Self::CreateSubtenant,
            Self::Suspend,
            Self::Resume,
            Self::Delete,
            Self::Restore,
            Self::Purge,
            Self::Move,
            Self::RestoreBackup,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub id: Uuid,
    pub kind: String,
    pub tenant_id: Option<Uuid>,
    pub state: String,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the operation needs to be finished by someone else (a move's servers).
    pub params: serde_json::Value,
}

/// A tenant row to insert.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub parent_id: Option<TenantId>,
    pub tier: Tier,
    pub status: TenantStatus,
    pub db_server_id: Option<Uuid>,
    pub db_name: Option<String>,
    pub db_password_enc: Option<Vec<u8>>,
    pub schema_version: i32,
    pub settings: serde_json::Value,
    pub settings_secrets_enc: Option<Vec<u8>>,
}

/// What happens to subtenants when their root tenant changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cascade {
    #[default]
    None,
    Delete,
    Restore,
    Purge,
}

/// The tenant change an operation makes when it finishes.
#[derive(Debug, Clone, Default)]
pub struct TenantChange {
    pub status: Option<TenantStatus>,
    pub schema_version: Option<i32>,
    pub error: Option<String>,
    /// `Some(true)`: mark deleted now; `Some(false)`: clear the deletion.
    pub deleted: Option<bool>,
    pub purged: bool,
    pub cascade: Cascade,
    /// The server the tenant's database now lives on (a move).
    pub server: Option<Uuid>,
}

impl Catalog {
    /// Inserts a tenant and its first operation in one transaction. The
    /// operation stays running (a create with side effects still to do) or is
    /// finished at once (`finished`).
    pub async fn insert_tenant(
        &self,
        new: &NewTenant,
        op_id: Uuid,
        kind: OpKind,
        finished: bool,
    ) -> Result<TenantRecord, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO tenants (id, slug, name, parent_id, tier, status, db_server_id,
                        db_name, db_role, db_password_enc, schema_version, settings, settings_secrets_enc)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12)
                     RETURNING {TENANT_COLUMNS}"
                ),
                &[
                    &new.id.as_uuid(),
                    &new.slug,
                    &new.name,
                    &new.parent_id.map(|p| p.as_uuid()),
                    &new.tier.as_str(),
                    &new.status.as_str(),
                    &new.db_server_id,
                    &new.db_name,
                    &new.db_password_enc,
                    &new.schema_version,
                    &new.settings,
                    &new.settings_secrets_enc,
                ],
            )
            .await
            .map_err(map_tenant_conflict)?;
        let state = if finished { "succeeded" } else { "running" };
        tx.execute(
            "INSERT INTO operations (id, kind, tenant_id, state, attempts, finished_at)
             VALUES ($1, $2, $3, $4, 1, CASE WHEN $5 THEN now() END)",
            &[&op_id, &kind.as_str(), &new.id.as_uuid(), &state, &finished],
        )
        .await?;
        tx.commit().await?;
        Ok(tenant_from_row(&row))
    }

    /// Starts an operation on an existing tenant; `TenantBusy` while another
    /// one is unfinished.
    pub async fn begin_operation(
        &self,
        id: Uuid,
        tenant: TenantId,
        kind: OpKind,
    ) -> Result<(), CatalogError> {
        self.begin_operation_with(id, tenant, kind, &serde_json::json!({}))
            .await
    }

    /// `begin_operation` with parameters the reconciler needs to finish it.
    pub async fn begin_operation_with(
        &self,
        id: Uuid,
        tenant: TenantId,
        kind: OpKind,
        params: &serde_json::Value,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO operations (id, kind, tenant_id, state, attempts, params)
                 VALUES ($1, $2, $3, 'running', 1, $4)",
                &[&id, &kind.as_str(), &tenant.as_uuid(), params],
            )
            .await
            .map_err(|e| match e.code() {
                Some(c) if *c == SqlState::UNIQUE_VIOLATION => CatalogError::TenantBusy,
                _ => CatalogError::Query(e),
            })?;
        Ok(())
    }

    /// Finishes `op` as succeeded (or failed, with `error`) and applies
    /// `change` to its tenant, in one transaction.
    pub async fn finish_operation(
        &self,
        op: Uuid,
        tenant: TenantId,
        succeeded: bool,
        op_error: Option<&str>,
        change: &TenantChange,
    ) -> Result<Option<TenantRecord>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let old_deleted_at: Option<DateTime<Utc>> = tx
            .query_opt(
                "SELECT deleted_at FROM tenants WHERE id = $1 FOR UPDATE",
                &[&tenant.as_uuid()],
            )
            .await?
            .and_then(|r| r.get(0));
        let deleted = change.deleted.map(|d| if d { "set" } else { "clear" });
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE tenants SET
                        status = coalesce($2, status),
                        schema_version = coalesce($3, schema_version),
                        error = $4,
                        deleted_at = CASE $5::text WHEN 'set' THEN now() WHEN 'clear' THEN NULL ELSE deleted_at END,
                        purged_at = CASE WHEN $6 THEN now() ELSE purged_at END,
                        db_server_id = coalesce($7, db_server_id),
                        updated_at = now()
                      WHERE id = $1 RETURNING {TENANT_COLUMNS}"
                ),
                &[
                    &tenant.as_uuid(),
                    &change.status.map(TenantStatus::as_str),
                    &change.schema_version,
                    &change.error,
                    &deleted,
                    &change.purged,
                    &change.server,
                ],
            )
            .await?;
        let cascade = match change.cascade {
            Cascade::None => None,
            Cascade::Delete => Some(
                "UPDATE tenants SET status = 'deleted', deleted_at = now(), updated_at = now()
                  WHERE parent_id = $1 AND purged_at IS NULL AND status <> 'deleted'",
            ),
            Cascade::Restore => Some(
                "UPDATE tenants SET status = 'active', deleted_at = NULL, updated_at = now()
                  WHERE parent_id = $1 AND purged_at IS NULL AND deleted_at = $2",
            ),
            Cascade::Purge => Some(
                "UPDATE tenants SET status = 'deleted', deleted_at = coalesce(deleted_at, now()),
                        purged_at = now(), updated_at = now()
                  WHERE parent_id = $1 AND purged_at IS NULL",
            ),
        };
        if let Some(sql) = cascade {
            if change.cascade == Cascade::Restore {
                tx.execute(sql, &[&tenant.as_uuid(), &old_deleted_at])
                    .await?;
            } else {
                tx.execute(sql, &[&tenant.as_uuid()]).await?;
            }
        }
        let state = if succeeded { "succeeded" } else { "failed" };
        tx.execute(
            "UPDATE operations SET state = $2, error = $3, finished_at = now(), updated_at = now() WHERE id = $1",
            &[&op, &state, &op_error],
        )
        .await?;
        tx.commit().await?;
        Ok(row.as_ref().map(tenant_from_row))
    }

    /// Finishes `op` as failed with `error`, leaving its tenant as it is.
    pub async fn fail_operation(
        &self,
        op: Uuid,
        tenant: TenantId,
        error: &str,
    ) -> Result<(), CatalogError> {
        self.finish_operation(op, tenant, false, Some(error), &TenantChange::default())
            .await
            .map(|_| ())
    }

    /// Unfinished operations untouched for `stale_after`: abandoned by a
    /// crashed process, or stuck.
    pub async fn stale_operations(
        &self,
        stale_after: Duration,
    ) -> Result<Vec<Operation>, CatalogError> {
        let client = self.pool().get().await?;
        let secs = stale_after.as_secs_f64();
        let rows = client
            .query(
                "SELECT id, kind, tenant_id, state, attempts, error, created_at, updated_at, params
                   FROM operations
                  WHERE state IN ('pending', 'running')
                    AND updated_at <= now() - make_interval(secs => $1)
                  ORDER BY created_at",
                &[&secs],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Operation {
                id: r.get(0),
                kind: r.get(1),
                tenant_id: r.get(2),
                state: r.get(3),
                attempts: r.get(4),
                error: r.get(5),
                created_at: r.get(6),
                updated_at: r.get(7),
                params: r.get(8),
            })
            .collect())
    }

    /// Whether `tenant` has an operation that has not finished.
    pub async fn has_unfinished_operation(&self, tenant: TenantId) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM operations
                                 WHERE tenant_id = $1 AND state IN ('pending', 'running'))",
                &[&tenant.as_uuid()],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The running process's sign of life for `op`: an operation whose
    /// process beats is never stale, however long it runs.
    pub async fn heartbeat_operation(&self, op: Uuid) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE operations SET updated_at = clock_timestamp()
                  WHERE id = $1 AND state IN ('pending', 'running')",
                &[&op],
            )
            .await?;
        Ok(())
    }

    /// Claims a stale operation for a retry: bumps its attempts and heartbeat
    /// if it is still as `seen` (compare-and-set on `updated_at`), so that of
    /// several replicas reconciling at once exactly one wins.
    pub async fn claim_operation(&self, seen: &Operation) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "UPDATE operations SET attempts = attempts + 1, updated_at = clock_timestamp()
                  WHERE id = $1 AND state IN ('pending', 'running') AND updated_at = $2",
                &[&seen.id, &seen.updated_at],
            )
            .await?;
        Ok(n == 1)
    }
}

pub(super) fn map_tenant_conflict(e: tokio_postgres::Error) -> CatalogError {
    match e.as_db_error() {
        Some(db)
            if *db.code() == SqlState::UNIQUE_VIOLATION
                && db.constraint() == Some("tenants_slug_live_idx") =>
        {
            CatalogError::SlugTaken
        }
        Some(db) if *db.code() == SqlState::FOREIGN_KEY_VIOLATION => CatalogError::ParentMissing,
        _ => CatalogError::Query(e),
    }
}
