//! `api_keys`: tenant API keys. Only a SHA-256 of each key's secret is kept.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::TenantId;

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub subtenant_id: Option<TenantId>,
    pub name: String,
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: Vec<u8>,
    pub role: String,
    pub permissions: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, tenant_id, subtenant_id, name, prefix, key_hash, role, permissions, created_by, created_at, revoked_at";

fn from_row(r: &tokio_postgres::Row) -> ApiKeyRecord {
    ApiKeyRecord {
        id: r.get(0),
        tenant_id: TenantId::from(r.get::<_, Uuid>(1)),
        subtenant_id: r.get::<_, Option<Uuid>>(2).map(TenantId::from),
        name: r.get(3),
        prefix: r.get(4),
        key_hash: r.get(5),
        role: r.get(6),
        permissions: r.get(7),
        created_by: r.get(8),
        created_at: r.get(9),
        revoked_at: r.get(10),
    }
}

impl Catalog {
    pub async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO api_keys (id, tenant_id, subtenant_id, name, prefix, key_hash, role, permissions, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &key.id,
                    &key.tenant_id.as_uuid(),
                    &key.subtenant_id.map(|s| s.as_uuid()),
                    &key.name,
                    &key.prefix,
                    &key.key_hash,
                    &key.role,
                    &key.permissions,
                    &key.created_by,
                ],
            )
            .await?;
        Ok(())
    }

    /// A live (unrevoked) key by its public prefix.
    pub async fn live_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL"),
                &[&prefix],
            )
            .await?;
        Ok(row.as_ref().map(from_row))
    }

    pub async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at"),
                &[&tenant.as_uuid()],
            )
            .await?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Revokes a key of `tenant`; false when there is no such live key.
    pub async fn revoke_api_key(&self, tenant: TenantId, id: Uuid) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let n = client
            .execute(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
                &[&id, &tenant.as_uuid()],
            )
            .await?;
        Ok(n == 1)
    }
}
