//! `api_keys`: tenant API keys. Only a SHA-256 of each key's secret is kept.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Catalog, CatalogError};

/// The advisory lock class that serialises minting a tenant's keys ("tpak").
const API_KEY_LOCK_CLASS: i32 = 0x7470_616b;
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
    /// After this the key stops working; `None`: it does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, tenant_id, subtenant_id, name, prefix, key_hash, role, permissions,
    created_by, created_at, revoked_at, expires_at";

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
        expires_at: r.get(11),
    }
}

impl Catalog {
    /// Stores a new key, unless the tenant has `cap` live keys already
    /// (`ApiKeyLimit`). The count and the insert hold the tenant's key lock,
    /// so two keys minted together cannot both pass the cap.
    pub async fn insert_api_key(&self, key: &ApiKeyRecord, cap: u32) -> Result<(), CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&API_KEY_LOCK_CLASS, &key.tenant_id.to_string()],
        )
        .await?;
        let live: i64 = tx
            .query_one(
                "SELECT count(*) FROM api_keys
                  WHERE tenant_id = $1 AND revoked_at IS NULL
                    AND (expires_at IS NULL OR expires_at > now())",
                &[&key.tenant_id.as_uuid()],
            )
            .await?
            .get(0);
        if live >= i64::from(cap) {
            return Err(CatalogError::ApiKeyLimit(cap));
        }
        tx.execute(
            "INSERT INTO api_keys (id, tenant_id, subtenant_id, name, prefix, key_hash, role, permissions, created_by, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                &key.expires_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An unrevoked key by its public prefix; whether it has expired is
    /// for the caller to say, once the secret matched.
    pub async fn live_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM api_keys
                      WHERE prefix = $1 AND revoked_at IS NULL"
                ),
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
