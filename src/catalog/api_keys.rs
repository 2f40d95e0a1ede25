//! `api_keys`: tenant API keys. Only a SHA-256 of each key's secret is kept.
//!
//! Rules:
//! - A key minted with another key names it (`minted_by`). Revoking a key
//!   revokes every key below it, transitively, in one statement.
//! - Minting and revoking hold the tenant's key lock, so a key cannot be
//!   minted by a key whose revocation is committing: the maker is checked
//!   live under the lock.
//! - Revoked and expired keys are pruned by the retention pass
//!   (`retention.rs`); a pruned maker leaves its children's link empty.
//! - A tenant holds at most `tenants.max_api_keys` live keys: the count and
//!   the insert hold the key lock, so two keys minted together cannot both
//!   pass the cap (`ApiKeyLimit`).

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
    /// For logins on the PostgreSQL wire; `None` for keys minted before it.
    #[serde(skip)]
    pub wire: Option<crate::domain::WireVerifier>,
}

const COLUMNS: &str = "id, tenant_id, subtenant_id, name, prefix, key_hash, role, permissions,
    created_by, created_at, revoked_at, expires_at, wire_stored_key, wire_server_key";

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
        wire: wire_verifier(r.get(12), r.get(13)),
    }
}

fn wire_verifier(
    stored: Option<Vec<u8>>,
    server: Option<Vec<u8>>,
) -> Option<crate::domain::WireVerifier> {
    Some(crate::domain::WireVerifier {
        stored_key: stored?.try_into().ok()?,
        server_key: server?.try_into().ok()?,
    })
}

/// A key as the list shows it: its record and the key that minted it.
#[derive(Debug, Clone, Serialize)]
pub struct ListedKey {
    #[serde(flatten)]
    pub record: ApiKeyRecord,
    /// The key that minted this one; `None`: a token did (or it was pruned).
    pub minted_by: Option<Uuid>,
}

/// Whether a key was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Minted {
    Stored,
    /// The key minting it was revoked (or expired) meanwhile.
    MakerGone,
}

/// Takes the tenant's key lock for the rest of the transaction.
async fn lock_keys(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: TenantId,
) -> Result<(), CatalogError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&API_KEY_LOCK_CLASS, &tenant.to_string()],
    )
    .await?;
    Ok(())
}

impl Catalog {
    /// Stores a new key, minted by the key `minted_by` if any, unless the
    /// tenant has `cap` live keys already (`ApiKeyLimit`) or the maker is no
    /// longer live (`MakerGone`). The checks and the insert hold the
    /// tenant's key lock, so two keys minted together cannot both pass the
    /// cap, and no key is minted under a maker being revoked.
    pub async fn insert_api_key(
        &self,
        key: &ApiKeyRecord,
        minted_by: Option<Uuid>,
        cap: u32,
    ) -> Result<Minted, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        lock_keys(&tx, key.tenant_id).await?;
        if let Some(maker) = minted_by {
            let live = tx
                .query_opt(
                    "SELECT 1 FROM api_keys
                      WHERE id = $1 AND revoked_at IS NULL
                        AND (expires_at IS NULL OR expires_at > now())",
                    &[&maker],
                )
                .await?;
            if live.is_none() {
                return Ok(Minted::MakerGone);
            }
        }
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
            "INSERT INTO api_keys (id, tenant_id, subtenant_id, name, prefix, key_hash, role, permissions, created_by, expires_at, minted_by, wire_stored_key, wire_server_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
                &minted_by,
                &key.wire.as_ref().map(|w| w.stored_key.as_slice()),
                &key.wire.as_ref().map(|w| w.server_key.as_slice()),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Minted::Stored)
    }

    /// An unrevoked key by its public prefix; whether it has expired is
    /// for the caller to say, once the secret matched.
    pub async fn live_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, CatalogError> {
        self.read_opt(
            &format!(
                "SELECT {COLUMNS} FROM api_keys
                  WHERE prefix = $1 AND revoked_at IS NULL"
            ),
            &[&prefix],
            from_row,
        )
        .await
    }

    /// The unrevoked keys of root tenant `tenant` that can log in on the
    /// PostgreSQL wire (they have a verifier); whether one has expired is
    /// for the caller to say, once the proof matched.
    pub async fn wire_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT {COLUMNS} FROM api_keys
                  WHERE tenant_id = $1 AND revoked_at IS NULL AND wire_stored_key IS NOT NULL"
            ),
            &[&tenant.as_uuid()],
            from_row,
        )
        .await
    }

    /// A page of `tenant`'s keys in the order they were made (ids are
    /// UUIDv7), after the key `after`; at most `limit`.
    pub async fn list_api_keys(
        &self,
        tenant: TenantId,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ListedKey>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS}, minted_by FROM api_keys
                      WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2)
                      ORDER BY id LIMIT $3"
                ),
                &[&tenant.as_uuid(), &after, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ListedKey {
                record: from_row(r),
                minted_by: r.get(14),
            })
            .collect())
    }

    /// Revokes a live key of `tenant` and every live key it minted,
    /// transitively, in one statement under the tenant's key lock; returns
    /// the ids revoked (empty: there is no such live key).
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Vec<Uuid>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        lock_keys(&tx, tenant).await?;
        let rows = tx
            .query(
                "WITH RECURSIVE tree AS (
                     SELECT id FROM api_keys
                      WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL
                     UNION
                     SELECT k.id FROM api_keys k JOIN tree t ON k.minted_by = t.id
                 )
                 UPDATE api_keys SET revoked_at = now()
                  WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL
                 RETURNING id",
                &[&id, &tenant.as_uuid()],
            )
            .await?;
        tx.commit().await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
