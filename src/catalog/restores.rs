//! The catalog side of restoring a backup: the records an archive brings
//! back, written in the same transaction that finishes the operation.

use uuid::Uuid;

use super::operations::NewTenant;
use super::{Catalog, CatalogError};
use crate::domain::TenantId;

/// A subtenant record as an in-place restore brings it back.
#[derive(Debug, Clone)]
pub struct RestoredSubtenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub settings: serde_json::Value,
    pub settings_secrets_enc: Option<Vec<u8>>,
}

/// What an in-place restore puts back in the catalog.
#[derive(Debug, Clone)]
pub struct InPlaceRestore {
    pub root: TenantId,
    pub settings: serde_json::Value,
    pub settings_secrets_enc: Option<Vec<u8>>,
    pub schema_version: i32,
    pub subtenants: Vec<RestoredSubtenant>,
    pub domains: Vec<String>,
}

impl Catalog {
    /// Writes an in-place restore's records and finishes `op`, in one
    /// transaction. Domains another tenant took meanwhile are skipped;
    /// their names are returned.
    pub async fn finish_in_place_restore(
        &self,
        op: Uuid,
        restore: &InPlaceRestore,
    ) -> Result<Vec<String>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let root = restore.root.as_uuid();
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
                       settings_secrets_enc = EXCLUDED.settings_secrets_enc, updated_at = now()",
                &[
                    &sub.id.as_uuid(),
                    &sub.slug,
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
        finish(&tx, op, true, None).await?;
        tx.commit().await?;
        Ok(skipped)
    }

    /// Records a restored clone's subtenants, marks the clone active at
    /// `schema_version` and finishes `op`, in one transaction.
    pub async fn finish_restored_clone(
        &self,
        op: Uuid,
        root: TenantId,
        subtenants: &[NewTenant],
        schema_version: i32,
    ) -> Result<(), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        for sub in subtenants {
            tx.execute(
                "INSERT INTO tenants (id, slug, name, parent_id, tier, status, settings, settings_secrets_enc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &sub.id.as_uuid(),
                    &sub.slug,
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
        finish(&tx, op, true, None).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn finish(
    tx: &tokio_postgres::Transaction<'_>,
    op: Uuid,
    succeeded: bool,
    error: Option<&str>,
) -> Result<(), CatalogError> {
    let state = if succeeded { "succeeded" } else { "failed" };
    tx.execute(
        "UPDATE operations SET state = $2, error = $3, finished_at = now(), updated_at = now() WHERE id = $1",
        &[&op, &state, &error],
    )
    .await?;
    Ok(())
}
