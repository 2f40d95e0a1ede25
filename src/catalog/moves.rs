//! The catalog side of a move: the placement switch, fenced and checked.
//! The switch is a placement like any other, so it lands only on a server
//! that is still `active` when it commits (`ServerNotActive` otherwise,
//! with nothing changed: the caller undoes its copy).

use uuid::Uuid;

use super::fencing::Fence;
use super::tenants::{tenant_from_row, TENANT_COLUMNS};
use super::{Catalog, CatalogError, TenantRecord};
use crate::domain::TenantId;

impl Catalog {
    /// Points the tenant at `to` and records the step `switched`, in one
    /// transaction, if `fence` still holds the operation and the tenant is
    /// still on `from` and `to` is still active. The operation stays
    /// running: the old copy is dropped after this, and whoever finishes the
    /// move knows from the step that the new copy is the live one.
    pub async fn switch_placement(
        &self,
        fence: Fence,
        tenant: TenantId,
        from: Uuid,
        to: Uuid,
    ) -> Result<TenantRecord, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // The tenant's row first, then the operation's (see `finish_fenced`).
        tx.execute(
            "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE",
            &[&tenant.as_uuid()],
        )
        .await?;
        let held = tx
            .execute(
                "UPDATE operations SET step = 'switched', updated_at = clock_timestamp()
                  WHERE id = $1 AND generation = $2 AND state = 'running'",
                &[&fence.op, &fence.generation],
            )
            .await?;
        if held != 1 {
            return Err(CatalogError::Fenced);
        }
        // The target was active when the move began; a drain may have
        // marked it since. Checked under its row's share lock, so a drain
        // either sees this switch in its listing or refuses it here.
        super::servers::lock_active_server(&tx, to).await?;
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE tenants SET db_server_id = $3, updated_at = now()
                      WHERE id = $1 AND db_server_id = $2 RETURNING {TENANT_COLUMNS}"
                ),
                &[&tenant.as_uuid(), &from, &to],
            )
            .await?
            .ok_or(CatalogError::Fenced)?;
        tx.commit().await?;
        Ok(tenant_from_row(&row))
    }
}
