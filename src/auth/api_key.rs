//! Tenant API keys: `tpk_<prefix>_<secret>`, 256 random bits of secret. The
//! key is shown once; the catalog keeps its prefix (to find it) and a SHA-256
//! of the secret (to check it). A revoked key stops working at once: keys are
//! checked against the catalog on every request, with no cache.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{AuthError, Claims, Permission, Role};
use crate::catalog::{ApiKeyRecord, Catalog};
use crate::domain::TenantId;

pub const API_KEY_PREFIX: &str = "tpk_";

/// A new key: the record to store and the one-time plain key.
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub key: String,
}

pub fn issue(
    tenant_id: TenantId,
    subtenant_id: Option<TenantId>,
    name: String,
    role: Role,
    permissions: Vec<Permission>,
    created_by: &str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> IssuedKey {
    let mut prefix = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut prefix);
    rand::rng().fill_bytes(&mut secret);
    let prefix = hex::encode(prefix);
    let secret = hex::encode(secret);
    IssuedKey {
        key: format!("{API_KEY_PREFIX}{prefix}_{secret}"),
        record: ApiKeyRecord {
            id: Uuid::now_v7(),
            tenant_id,
            subtenant_id,
            name,
            prefix,
            key_hash: Sha256::digest(secret.as_bytes()).to_vec(),
            role: role.as_str().to_string(),
            permissions: serde_json::to_value(permissions).expect("permissions serialise"),
            created_by: created_by.to_string(),
            created_at: chrono::Utc::now(),
            revoked_at: None,
            expires_at,
        },
    }
}

/// Checks an API key and returns the claims it carries.
pub async fn verify(catalog: &Catalog, key: &str) -> Result<Claims, AuthError> {
    let invalid = || AuthError::InvalidCredential("not a valid API key");
    let rest = key.strip_prefix(API_KEY_PREFIX).ok_or_else(invalid)?;
    let (prefix, secret) = rest.split_once('_').ok_or_else(invalid)?;
    if prefix.len() != 16 || secret.len() != 64 {
        return Err(invalid());
    }
    let record = catalog
        .live_api_key(prefix)
        .await
        .map_err(AuthError::Lookup)?
        .ok_or_else(invalid)?;
    let presented = Sha256::digest(secret.as_bytes());
    if !bool::from(presented.as_slice().ct_eq(&record.key_hash)) {
        return Err(invalid());
    }
    // Said only to whoever holds the secret, so it tells a guesser nothing.
    if record.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
        return Err(AuthError::Expired);
    }
    let role: Role = record.role.parse().map_err(|_| invalid())?;
    let permissions: Vec<Permission> =
        serde_json::from_value(record.permissions).map_err(|_| invalid())?;
    Ok(Claims {
        sub: format!("apikey:{}", record.id),
        tenant_id: Some(record.tenant_id),
        subtenant_id: record.subtenant_id,
        role,
        permissions,
        exp: record.expires_at.map_or(i64::MAX, |at| at.timestamp()),
        iat: None,
    })
}
