//! The catalog side of restoring a backup: the records an archive brings
//! back, written in the same transaction that finishes the operation. A
//! subtenant purged since the backup stays purged: its record is not
//! brought back (and the restore deletes its rows from the copy first).

use serde::{Deserialize, Serialize};

use super::fencing::Fence;
use super::operations::finish_fenced;
use super::tenants::NewTenant;
use super::{Catalog, CatalogError};
use crate::domain::TenantId;

/// A subtenant record as an in-place restore brings it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoredSubtenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub settings: serde_json::Value,
    pub settings_secrets_enc: Option<Vec<u8>>,
}

/// What an in-place restore puts back in the catalog. It is kept in the
/// operation's parameters before the swap, so that whoever finishes an
/// interrupted restore can write it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InPlaceRestore {
    pub root: TenantId,
    pub settings: serde_json::Value,
    pub settings_secrets_enc: Option<Vec<u8>>,
    pub schema_version: i32,
    pub subtenants: Vec<RestoredSubtenant>,
    pub domains: Vec<String>,
}

impl Catalog {
    /// Which of `subtenants` (of `root`) are purged: a restore must not
    /// bring their rows back.
    pub async fn purged_subtenants(
        &self,
        root: TenantId,
        subtenants: &[TenantId],
    ) -> Result<Vec<TenantId>, CatalogError> {
        let ids: Vec<uuid::Uuid> = subtenants.iter().map(|s| s.as_uuid()).collect();
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT id FROM tenants
                  WHERE parent_id = $1 AND id = ANY($2) AND purged_at IS NOT NULL",
                &[&root.as_uuid(), &ids],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TenantId::from(r.get::<_, uuid::Uuid>(0)))
            .collect())
    }

    /// Writes an in-place restore's records and finishes `op`, in one
    /// transaction. Domains another tenant took meanwhile are skipped;
    /// their names are returned.
    pub async fn finish_in_place_restore(
        &self,
        fence: Fence,
        restore: &InPlaceRestore,
    ) -> Result<Vec<String>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let root = restore.root.as_uuid();
        lock_tenant(&tx, root).await?;
        finish_fenced(&tx, fence, None).await?;
        tx.execute(
            "UPDATE tenants SET settings = $2, settings_secrets_enc = $3, schema_version = $4,
                    error = NULL, updated_at = now()
              WHERE id = $1",
            &[
                &root,
                &restore.settings,
                &restore.settings_secrets_enc,
                &restore.schema_version,
            ],
        )
        .await?;
        for sub in &restore.subtenants {
            tx.execute(
                "INSERT INTO tenants (id, slug, name, parent_id, tier, status, settings, settings_secrets_enc)
                 SELECT $1, $2, $3, $4, tier, $5, $6, $7 FROM tenants WHERE id = $4
                 ON CONFLICT (id) DO UPDATE
                   SET name = EXCLUDED.name, settings = EXCLUDED.settings,
                       settings_secrets_enc = EXCLUDED.settings_secrets_enc, updated_at = now()
                 WHERE tenants.purged_at IS NULL",
                &[
                    &sub.id.as_uuid(),
                    &sub.slug.as_str(),
                    &sub.name,
                    &root,
                    &sub.status,
                    &sub.settings,
                    &sub.settings_secrets_enc,
                ],
            )
            .await
            .map_err(super::operations::map_tenant_conflict)?;
        }
        tx.execute("DELETE FROM tenant_domains WHERE tenant_id = $1", &[&root])
            .await?;
        let mut skipped = Vec::new();
        for domain in &restore.domains {
            let added = tx
                .execute(
                    "INSERT INTO tenant_domains (domain, tenant_id) VALUES ($1, $2)
                     ON CONFLICT (domain) DO NOTHING",
                    &[domain, &root],
                )
                .await?;
            if added == 0 {
                skipped.push(domain.clone());
            }
        }
        tx.commit().await?;
        Ok(skipped)
    }

    /// Records a restored clone's subtenants, marks the clone active at
    /// `schema_version` and finishes `op`, in one transaction.
    pub async fn finish_restored_clone(
        &self,
        fence: Fence,
        root: TenantId,
        subtenants: &[NewTenant],
        schema_version: i32,
    ) -> Result<(), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        lock_tenant(&tx, root.as_uuid()).await?;
        finish_fenced(&tx, fence, None).await?;
        for sub in subtenants {
            tx.execute(
                "INSERT INTO tenants (id, slug, name, parent_id, tier, status, settings, settings_secrets_enc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &sub.id.as_uuid(),
                    &sub.slug.as_str(),
                    &sub.name,
                    &root.as_uuid(),
                    &sub.tier.as_str(),
                    &sub.status.as_str(),
                    &sub.settings,
                    &sub.settings_secrets_enc,
                ],
            )
            .await
            .map_err(super::operations::map_tenant_conflict)?;
        }
        tx.execute(
            "UPDATE tenants SET status = 'active', schema_version = $2, error = NULL, updated_at = now()
              WHERE id = $1",
            &[&root.as_uuid(), &schema_version],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The tenant's row lock, taken before the operation's (see `finish_fenced`).
async fn lock_tenant(
    tx: &tokio_postgres::Transaction<'_>,
    id: uuid::Uuid,
) -> Result<(), CatalogError> {
    tx.execute("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", &[&id])
        .await?;
    Ok(())
}
