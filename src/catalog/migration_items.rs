//! A fleet run's items: taken by a worker, handed back, finished.
//!
//! Rules:
//! - An item is taken by exactly one worker (`claim_item`: `FOR UPDATE SKIP
//!   LOCKED`), so runners on several replicas share a run without waiting.
//! - A migrated item ends in the same transaction as its tenant's `migrate`
//!   operation (`finish_item_and_operation`), fenced: the ledger, the
//!   tenant's schema version and the operation's end never disagree.
//! - Only the operation's begin waits for the disk (it is the tenant's
//!   lock). Its end does not: a catalog crash that loses it also ends this
//!   process's owner lease, so the operation is taken over and migrates the
//!   tenant again (a no-op), and the run's resume redoes the item; and any
//!   later durable commit, such as the next operation's begin on the tenant,
//!   flushes it first.
//! - Resuming a run (`reset_run_for_resume`) touches only its failed and
//!   unfinished items; finished ones stay finished.

use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::operations::end_with_item;
use super::{Catalog, CatalogError, Fence};
use crate::domain::TenantId;

/// An item taken for migration, with where its database is.
#[derive(Debug, Clone)]
pub struct ClaimedItem {
    pub tenant_id: TenantId,
    pub db_server_id: Uuid,
    pub db_name: String,
    /// The tenant's drift record says drifted at its version now (the drift
    /// gate reads the record itself only then).
    pub drifted: bool,
}

/// How one item ended.
#[derive(Debug, Clone, Copy)]
pub struct ItemResult<'a> {
    pub succeeded: bool,
    pub from_version: Option<i32>,
    pub to_version: Option<i32>,
    pub applied: Option<i32>,
    pub error: Option<&'a str>,
    pub duration_ms: i32,
}

const CLAIM: &str = "WITH next AS (
        SELECT tenant_id FROM migration_items
         WHERE run_id = $1 AND canary = $2 AND state = 'pending'
         ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED)
     UPDATE migration_items i SET state = 'running', started_at = now()
       FROM next JOIN tenants t ON t.id = next.tenant_id
            LEFT JOIN tenant_drift d ON d.tenant_id = next.tenant_id
      WHERE i.run_id = $1 AND i.tenant_id = next.tenant_id
     RETURNING i.tenant_id, t.db_server_id, t.db_name,
               coalesce(d.state = 'drifted' AND d.version = t.schema_version, false)";

const FINISH: &str = "UPDATE migration_items SET state = $3, from_version = $4, to_version = $5,
            applied = $6, error = $7, duration_ms = $8, finished_at = now()
      WHERE run_id = $1 AND tenant_id = $2";

const SET_VERSION: &str =
    "UPDATE tenants SET schema_version = $2, updated_at = now() WHERE id = $1";

impl Catalog {
    /// Takes the next pending item of a wave; `None` when the wave is done.
    /// `SKIP LOCKED` lets several workers (or runners) take items without waiting.
    pub async fn claim_item(
        &self,
        run: Uuid,
        canary: bool,
    ) -> Result<Option<ClaimedItem>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Item bookkeeping need not wait for the disk: a crash loses at most
        // the last few updates, and a resume redoes those tenants as no-ops
        // (refinery's history in each tenant database is the truth).
        // Sent together with the statement: one round trip.
        let statement = tx.prepare_cached(CLAIM).await?;
        let params: [&(dyn ToSql + Sync); 2] = [&run, &canary];
        let (_, row) = tokio::try_join!(
            tx.batch_execute("SET LOCAL synchronous_commit TO off"),
            tx.query_opt(&statement, &params),
        )?;
        tx.commit().await?;
        Ok(row.map(|r| ClaimedItem {
            tenant_id: TenantId::from(r.get::<_, Uuid>(0)),
            db_server_id: r.get(1),
            db_name: r.get(2),
            drifted: r.get(3),
        }))
    }

    /// Hands a taken item back, untouched, for a later worker or a resume.
    pub async fn unclaim_item(&self, run: Uuid, tenant: TenantId) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE migration_items SET state = 'pending', started_at = NULL
                  WHERE run_id = $1 AND tenant_id = $2 AND state = 'running'",
                &[&run, &tenant.as_uuid()],
            )
            .await?;
        Ok(())
    }

    /// Records an item's result, and the tenant's new schema version, together.
    pub async fn finish_item(
        &self,
        run: Uuid,
        tenant: TenantId,
        result: &ItemResult<'_>,
    ) -> Result<(), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // See `claim_item`: a lost update is redone as a no-op on resume.
        tx.batch_execute("SET LOCAL synchronous_commit TO off")
            .await?;
        write_item(&tx, run, tenant, result).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends the tenant's `migrate` operation (`fence`) as succeeded with the
    /// item's result and the tenant's new schema version, in one transaction.
    /// `Fenced` when another process has claimed the operation since: then
    /// nothing is written.
    pub async fn finish_item_and_operation(
        &self,
        fence: Fence,
        run: Uuid,
        tenant: TenantId,
        result: &ItemResult<'_>,
    ) -> Result<(), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        end_with_item(&tx, fence, tenant).await?;
        write_item(&tx, run, tenant, result).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Puts failed items, and items a killed runner left running, back to
    /// pending; finished items stay finished.
    pub async fn reset_run_for_resume(&self, run: Uuid) -> Result<u64, CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "UPDATE migration_items SET state = 'pending', error = NULL, started_at = NULL
                  WHERE run_id = $1 AND state IN ('failed', 'running')",
                &[&run],
            )
            .await?;
        client
            .execute(
                "UPDATE migration_runs SET state = 'pending', error = NULL, finished_at = NULL, updated_at = now()
                  WHERE id = $1",
                &[&run],
            )
            .await?;
        Ok(n)
    }
}

/// The item's row, and the tenant's version when it moved: pipelined, one
/// round trip.
async fn write_item(
    tx: &deadpool_postgres::Transaction<'_>,
    run: Uuid,
    tenant: TenantId,
    result: &ItemResult<'_>,
) -> Result<(), CatalogError> {
    let state = if result.succeeded {
        "succeeded"
    } else {
        "failed"
    };
    let (finish, set_version) =
        tokio::try_join!(tx.prepare_cached(FINISH), tx.prepare_cached(SET_VERSION))?;
    let tenant = tenant.as_uuid();
    let params: [&(dyn ToSql + Sync); 8] = [
        &run,
        &tenant,
        &state,
        &result.from_version,
        &result.to_version,
        &result.applied,
        &result.error,
        &result.duration_ms,
    ];
    let item = tx.execute(&finish, &params);
    match result.to_version {
        Some(version) => {
            let params: [&(dyn ToSql + Sync); 2] = [&tenant, &version];
            tokio::try_join!(item, tx.execute(&set_version, &params))?;
        }
        None => {
            item.await?;
        }
    }
    Ok(())
}
