//! A revert's items: taken by a worker, handed back, finished.
//!
//! Rules:
//! - An item is taken by exactly one worker (`claim_revert_item`: `FOR
//!   UPDATE SKIP LOCKED`). A resume puts back to pending only items left
//!   running or failed; their worker re-checks the tenant under its lock.
//! - A reverted item ends in the same transaction as its tenant's `migrate`
//!   operation, with the tenant's version and its stale drift record
//!   (`finish_revert_item_and_operation`), fenced, and without waiting for
//!   the disk, as a fleet run's item does (see `migration_items.rs`): a
//!   lost end is taken over, and the database's own history keeps a tenant
//!   from being reverted twice.

use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::migration_reverts::item_from_row;
use super::operations::end_with_item;
use super::{Catalog, CatalogError, Fence, RevertItem};
use crate::domain::TenantId;

const FINISH_ITEM: &str =
    "UPDATE migration_revert_items SET state = $3, reason = $4, finished_at = now()
      WHERE revert_id = $1 AND tenant_id = $2";

pub(super) const FORGET_DRIFT: &str =
    "UPDATE tenant_drift SET state = 'unknown', reason = 'reverted since this check'
      WHERE tenant_id = $1 AND version = $2";

impl Catalog {
    /// Takes the next pending item; `None` when there is none.
    pub async fn claim_revert_item(&self, id: Uuid) -> Result<Option<RevertItem>, CatalogError> {
        self.read_opt(
            "WITH next AS (
                    SELECT tenant_id FROM migration_revert_items
                     WHERE revert_id = $1 AND state = 'pending'
                     ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED)
                 UPDATE migration_revert_items i SET state = 'running', started_at = now()
                   FROM next WHERE i.revert_id = $1 AND i.tenant_id = next.tenant_id
                 RETURNING i.revert_id, i.tenant_id, i.state, i.from_version, i.to_version,
                           i.reason, i.finished_at",
            &[&id],
            item_from_row,
        )
        .await
    }

    /// Hands a taken item back, untouched (a cancel came first).
    pub async fn unclaim_revert_item(
        &self,
        id: Uuid,
        tenant: TenantId,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE migration_revert_items SET state = 'pending', started_at = NULL
                  WHERE revert_id = $1 AND tenant_id = $2 AND state = 'running'",
                &[&id, &tenant.as_uuid()],
            )
            .await?;
        Ok(())
    }

    /// Records an item's end: succeeded, failed or skipped, with why.
    pub async fn finish_revert_item(
        &self,
        id: Uuid,
        tenant: TenantId,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(FINISH_ITEM, &[&id, &tenant.as_uuid(), &state, &reason])
            .await?;
        Ok(())
    }

    /// Puts items a killed runner left running, and failed ones, back to
    /// pending; finished and skipped items stay as they are.
    pub async fn reset_revert_for_resume(&self, id: Uuid) -> Result<u64, CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "UPDATE migration_revert_items SET state = 'pending', reason = NULL, started_at = NULL
                  WHERE revert_id = $1 AND state IN ('failed', 'running')",
                &[&id],
            )
            .await?;
        client
            .execute(
                "UPDATE migration_reverts SET state = 'pending', error = NULL, finished_at = NULL,
                        updated_at = now()
                  WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(n)
    }

    /// Ends the tenant's `migrate` operation (`fence`) as succeeded, with
    /// the tenant at `version`, its drift record about `version` made stale
    /// (`forget_drift`) and the item succeeded with `reason`, in one
    /// transaction. `Fenced` when another process has claimed the operation.
    pub async fn finish_revert_item_and_operation(
        &self,
        fence: Fence,
        id: Uuid,
        tenant: TenantId,
        version: i32,
        reason: Option<&str>,
    ) -> Result<(), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        end_with_item(&tx, fence, tenant).await?;
        let (set_version, forget, finish) = tokio::try_join!(
            tx.prepare_cached(
                "UPDATE tenants SET schema_version = $2, updated_at = now() WHERE id = $1"
            ),
            tx.prepare_cached(FORGET_DRIFT),
            tx.prepare_cached(FINISH_ITEM),
        )?;
        let tenant = tenant.as_uuid();
        let at: [&(dyn ToSql + Sync); 2] = [&tenant, &version];
        let succeeded = "succeeded";
        let item: [&(dyn ToSql + Sync); 4] = [&id, &tenant, &succeeded, &reason];
        tokio::try_join!(
            tx.execute(&set_version, &at),
            tx.execute(&forget, &at),
            tx.execute(&finish, &item),
        )?;
        tx.commit().await?;
        Ok(())
    }
}
