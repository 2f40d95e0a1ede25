//! `operations`: every lifecycle step is a row, written before its side effect
//! and finished after it, together with the tenant change it makes. A partial
//! unique index allows one unfinished operation per tenant: that row is the
//! per-tenant lock, across replicas and across crashes.
//!
//! Every write of a running operation is fenced: it names the operation's
//! id and the generation its writer claimed (`Fence`), and changes nothing
//! if another process has claimed it since (`CatalogError::Fenced`).
//! Claims, heartbeats and the row lock for destructive steps are in
//! `fencing.rs`.
//!
//! Rules:
//! - Every lifecycle side effect has its operation row written before it.
//! - An operation decides on its tenant as read under the tenant's lock:
//!   `begin_operation` reads the row `FOR UPDATE` in the transaction that
//!   inserts the operation.
//! - A transaction that touches a tenant and its operation locks the
//!   tenant's row first, then the operation's (else two would deadlock).

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::fencing::{Fence, Owner};
use super::tenants::{tenant_from_row, NewTenant, TenantRecord, TENANT_COLUMNS};
use super::{Catalog, CatalogError, OpKind, OpState};
use crate::domain::{DbName, TenantId, TenantStatus};
use crate::error_code::ErrorCode;

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

/// Why an operation failed, recorded in the same write as its `failed`
/// state: the error code the API answers with for the same failure (so a
/// poll never sees `failed` without its code, whoever started it) and a
/// message.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub code: ErrorCode,
    pub message: &'a str,
}

impl Catalog {
    /// Inserts a tenant and its first operation in one transaction. The
    /// operation stays running (a create with side effects still to do) or is
    /// finished at once (`finished`). A root tenant's server must still be
    /// active (`ServerNotActive`: pick again).
    pub async fn insert_tenant(
        &self,
        new: &NewTenant,
        op_id: Uuid,
        kind: OpKind,
        finished: bool,
        owner: Owner,
    ) -> Result<(TenantRecord, Fence), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        if let Some(server) = new.db_server_id {
            super::servers::lock_active_server(&tx, server).await?;
        }
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
                    &new.slug.as_str(),
                    &new.name,
                    &new.parent_id.map(|p| p.as_uuid()),
                    &new.tier.as_str(),
                    &new.status.as_str(),
                    &new.db_server_id,
                    &new.db_name.as_ref().map(DbName::as_str),
                    &new.db_password_enc,
                    &new.schema_version,
                    &new.settings,
                    &new.settings_secrets_enc,
                ],
            )
            .await
            .map_err(map_tenant_conflict)?;
        let state = if finished {
            OpState::Succeeded
        } else {
            OpState::Running
        };
        tx.execute(
            "INSERT INTO operations (id, kind, tenant_id, state, attempts, finished_at, owner, owner_key)
             VALUES ($1, $2, $3, $4, 1, CASE WHEN $5 THEN now() END, $6, $7)",
            &[
                &op_id,
                &kind,
                &new.id.as_uuid(),
                &state,
                &finished,
                &owner.id,
                &owner.key,
            ],
        )
        .await?;
        tx.commit().await?;
        let fence = Fence {
            op: op_id,
            generation: 1,
        };
        Ok((tenant_from_row(&row), fence))
    }

    /// Starts an operation on an existing tenant and returns the tenant as it
    /// is now, read under the tenant's row lock in the same transaction: no
    /// other operation can change it until this one finishes, so what the
    /// caller checks against it holds. `TenantBusy` while another operation
    /// is unfinished; `TenantMissing` when there is no such tenant.
    pub async fn begin_operation(
        &self,
        id: Uuid,
        tenant: TenantId,
        kind: OpKind,
        params: &serde_json::Value,
        owner: Owner,
    ) -> Result<(TenantRecord, Fence), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Prepared once per catalog session: every operation's begin sends them.
        let lock_sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 FOR UPDATE");
        let (lock, insert) = tokio::try_join!(
            tx.prepare_cached(&lock_sql),
            tx.prepare_cached(
                "INSERT INTO operations (id, kind, tenant_id, state, attempts, params, owner, owner_key)
                 VALUES ($1, $2, $3, 'running', 1, $4, $5, $6)"
            ),
        )?;
        let record = tx
            .query_opt(&lock, &[&tenant.as_uuid()])
            .await?
            .map(|r| tenant_from_row(&r))
            .ok_or(CatalogError::TenantMissing)?;
        tx.execute(
            &insert,
            &[&id, &kind, &tenant.as_uuid(), params, &owner.id, &owner.key],
        )
        .await
        .map_err(|e| match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => CatalogError::TenantBusy,
            _ => CatalogError::from(e),
        })?;
        tx.commit().await?;
        Ok((
            record,
            Fence {
                op: id,
                generation: 1,
            },
        ))
    }

    /// Removes an operation that turned out to have nothing to do (the
    /// tenant was not in a state it acts on) before any side effect.
    pub async fn discard_operation(&self, fence: Fence) -> Result<(), CatalogError> {
        // Deletes only the operation's row; no tenant row is touched.
        let client = self.pool().get().await?;
        client
            .execute(
                "DELETE FROM operations WHERE id = $1 AND generation = $2 AND state = 'running'",
                &[&fence.op, &fence.generation],
            )
            .await?;
        Ok(())
    }

    /// Finishes `op` as succeeded (or failed, with `failure`) and applies
    /// `change` to its tenant, in one transaction.
    /// `Fenced` when another process has claimed the operation since.
    pub async fn finish_operation(
        &self,
        fence: Fence,
        tenant: TenantId,
        failure: Option<Failure<'_>>,
        change: &TenantChange,
    ) -> Result<Option<TenantRecord>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // The tenant's row first, then the operation's: the order every
        // transaction that touches both takes them in, or two would deadlock.
        let old_deleted_at: Option<DateTime<Utc>> = tx
            .query_opt(
                "SELECT deleted_at FROM tenants WHERE id = $1 FOR UPDATE",
                &[&tenant.as_uuid()],
            )
            .await?
            .and_then(|r| r.get(0));
        finish_fenced(&tx, fence, failure).await?;
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
        tx.commit().await?;
        Ok(row.as_ref().map(tenant_from_row))
    }

    /// Finishes `op` as failed, leaving its tenant as it is.
    pub async fn fail_operation(
        &self,
        fence: Fence,
        tenant: TenantId,
        failure: Failure<'_>,
    ) -> Result<(), CatalogError> {
        self.finish_operation(fence, tenant, Some(failure), &TenantChange::default())
            .await
            .map(|_| ())
    }
}

/// Ends `fence`'s operation as succeeded inside `tx`, without waiting for
/// the disk at commit, for an item that ends with it (see the rules in
/// `migration_items.rs`): the tenant's row locked first, then the
/// operation's, the order `begin_operation` takes them in.
pub(super) async fn end_with_item(
    tx: &deadpool_postgres::Transaction<'_>,
    fence: Fence,
    tenant: TenantId,
) -> Result<(), CatalogError> {
    let lock = tx
        .prepare_cached("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE")
        .await?;
    let id = tenant.as_uuid();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
    tokio::try_join!(
        tx.batch_execute("SET LOCAL synchronous_commit TO off"),
        tx.query_opt(&lock, &params),
    )?;
    finish_fenced(tx, fence, None).await
}

/// Ends a running operation, succeeded or failed with its code and
/// message in the same write, if `fence` still holds it. Callers lock the
/// tenant's row first (the order `begin_operation` takes them in).
pub(super) async fn finish_fenced(
    tx: &deadpool_postgres::Transaction<'_>,
    fence: Fence,
    failure: Option<Failure<'_>>,
) -> Result<(), CatalogError> {
    let state = if failure.is_some() {
        OpState::Failed
    } else {
        OpState::Succeeded
    };
    // Prepared once per catalog session: every operation's end sends it.
    let statement = tx
        .prepare_cached(
            "UPDATE operations SET state = $3, error_code = $4, error = $5,
                    finished_at = now(), updated_at = now()
              WHERE id = $1 AND generation = $2 AND state = 'running'",
        )
        .await?;
    let n = tx
        .execute(
            &statement,
            &[
                &fence.op,
                &fence.generation,
                &state,
                &failure.map(|f| f.code.as_str()),
                &failure.map(|f| f.message),
            ],
        )
        .await?;
    if n == 1 {
        Ok(())
    } else {
        Err(CatalogError::Fenced)
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
        _ => CatalogError::from(e),
    }
}
