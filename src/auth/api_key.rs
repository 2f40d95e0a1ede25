//! Tenant API keys: `tpk_<prefix>_<secret>`, 256 random bits of secret. The
//! key is shown once; the catalog keeps its prefix (to find it) and a SHA-256
//! of the secret (to check it).
//!
//! Rules (`ApiKeys`):
//! - A valid key costs no catalog query: a verified record is kept in
//!   memory by prefix (an unknown prefix too), so one tenant's flood of
//!   requests never takes the shared catalog pool from anyone else.
//! - A revoked key stops working at once in the process that revoked it
//!   (`forget_tenant`), and on every other replica as soon as the catalog's
//!   change notice arrives (the router's listener relays it). A lookup that
//!   raced the revocation is not trusted (`stale`). A lost notice forgets
//!   everything (the listener's reconnect), and the records' time to live
//!   bounds the rest.
//! - Catalog lookups run at most `LOOKUPS` at a time for prefixes never
//!   seen valid, and `RECHECKS` for keys seen valid lately: a flood of
//!   guessed keys holds only a few catalog connections, and never delays a
//!   known key's check. A caller past its refusals does not wait its turn.
//! - The secret is compared in constant time, against the cached hash as
//!   against the catalog's.
//! - An expired key is refused as expired (`token_expired`) only once its
//!   secret matched, so that answer tells a guesser nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    let key = format!("{API_KEY_PREFIX}{prefix}_{secret}");
    let wire = super::scram::verifier(&key, &super::scram::tenant_salt(tenant_id));
    IssuedKey {
        key,
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
            wire: Some(wire),
        },
    }
}

/// How long a key's catalog record is trusted without a change notice (the
/// notices keep it true; this bounds what a lost one could leave).
const KEEP_FOR: Duration = Duration::from_secs(300);
/// How long a prefix that was a live key is remembered as one, so that
/// checking it again never queues behind guesses.
const VALID_LATELY_FOR: Duration = Duration::from_secs(3600);
/// Catalog lookups at once: of prefixes never seen valid, and of keys seen
/// valid lately. Two queues, so guessed keys cannot delay known ones.
const LOOKUPS: usize = 2;
const RECHECKS: usize = 2;
/// How long a lookup waits for its turn before the caller gets 503.
const LOOKUP_WAIT: Duration = Duration::from_secs(5);

/// Whether a lookup may wait for its turn. A client already past its
/// refusals does not: under a flood of guesses it gets 429 rather than a
/// place in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    Wait,
    NoWait,
}

/// A key's record as verification needs it.
#[derive(Debug)]
struct KnownKey {
    tenant_id: TenantId,
    key_hash: Vec<u8>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    claims: Arc<Claims>,
    /// The forget counter when its lookup began: a record read before a
    /// forget of its tenant is not trusted after it.
    seen: u64,
}

/// API-key verification with its in-memory records (see the module's rules).
#[derive(Clone)]
pub struct ApiKeys {
    catalog: Catalog,
    /// By prefix; `None` is a prefix the catalog has no live key for.
    known: moka::future::Cache<String, Option<Arc<KnownKey>>>,
    valid_lately: moka::sync::Cache<String, ()>,
    forgets: Arc<AtomicU64>,
    /// The forget counter when everything was last forgotten.
    all_forgotten_at: Arc<AtomicU64>,
    /// The forget counter when each tenant was last forgotten.
    forgotten_at: moka::sync::Cache<TenantId, u64>,
    lookups: Arc<tokio::sync::Semaphore>,
    rechecks: Arc<tokio::sync::Semaphore>,
    /// The same keys as the gateway's logins read them.
    wire: super::wire_keys::WireKeys,
}

impl ApiKeys {
    pub fn new(catalog: Catalog) -> Self {
        Self {
            wire: super::wire_keys::WireKeys::new(catalog.clone()),
            catalog,
            known: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEEP_FOR)
                .support_invalidation_closures()
                .build(),
            valid_lately: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(VALID_LATELY_FOR)
                .build(),
            forgets: Arc::default(),
            all_forgotten_at: Arc::default(),
            // Outlives every record it may have to distrust.
            forgotten_at: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEEP_FOR * 2)
                .build(),
            lookups: Arc::new(tokio::sync::Semaphore::new(LOOKUPS)),
            rechecks: Arc::new(tokio::sync::Semaphore::new(RECHECKS)),
        }
    }

    /// Forgets what is known of `tenant`'s keys (one was revoked or its
    /// expiry moved); its next request reads the catalog again.
    pub fn forget_tenant(&self, tenant: TenantId) {
        self.wire.forget_tenant(tenant);
        let now = self.forgets.fetch_add(1, Ordering::SeqCst) + 1;
        self.forgotten_at.insert(tenant, now);
        let _ = self.known.invalidate_entries_if(move |_, known| {
            known.as_ref().is_some_and(|k| k.tenant_id == tenant)
        });
    }

    /// The keys of a tenant for logins on the PostgreSQL wire.
    pub fn wire(&self) -> &super::wire_keys::WireKeys {
        &self.wire
    }

    /// Forgets every key (the change notices may have been missed).
    pub fn forget_all(&self) {
        self.wire.forget_all();
        let now = self.forgets.fetch_add(1, Ordering::SeqCst) + 1;
        self.all_forgotten_at.store(now, Ordering::SeqCst);
        self.known.invalidate_all();
    }

    /// Whether `key` was read before its tenant was last forgotten (a
    /// lookup racing a revocation): then it is read again.
    fn stale(&self, key: &KnownKey) -> bool {
        let forgotten = self
            .forgotten_at
            .get(&key.tenant_id)
            .unwrap_or(0)
            .max(self.all_forgotten_at.load(Ordering::SeqCst));
        key.seen < forgotten
    }

    /// Checks an API key and returns the claims it carries.
    pub async fn verify(&self, key: &str, patience: Patience) -> Result<Arc<Claims>, AuthError> {
        let invalid = || AuthError::InvalidCredential("not a valid API key");
        let rest = key.strip_prefix(API_KEY_PREFIX).ok_or_else(invalid)?;
        let (prefix, secret) = rest.split_once('_').ok_or_else(invalid)?;
        if prefix.len() != 16 || secret.len() != 64 {
            return Err(invalid());
        }
        let mut known = self.known_key(prefix, patience).await?;
        if known.as_ref().is_some_and(|k| self.stale(k)) {
            self.known.invalidate(prefix).await;
            known = self.known_key(prefix, patience).await?;
        }
        let known = known.ok_or_else(invalid)?;
        let presented = Sha256::digest(secret.as_bytes());
        if !bool::from(presented.as_slice().ct_eq(&known.key_hash)) {
            return Err(invalid());
        }
        // Said only to whoever holds the secret, so it tells a guesser nothing.
        if known.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
            return Err(AuthError::Expired);
        }
        Ok(known.claims.clone())
    }

    async fn known_key(
        &self,
        prefix: &str,
        patience: Patience,
    ) -> Result<Option<Arc<KnownKey>>, AuthError> {
        self.known
            .try_get_with(prefix.to_string(), self.look_up(prefix, patience))
            .await
            .map_err(|e: Arc<AuthError>| match &*e {
                AuthError::InvalidCredential(reason) => AuthError::InvalidCredential(reason),
                _ => AuthError::Busy,
            })
    }

    async fn look_up(
        &self,
        prefix: &str,
        patience: Patience,
    ) -> Result<Option<Arc<KnownKey>>, AuthError> {
        let queue = if self.valid_lately.contains_key(prefix) {
            &self.rechecks
        } else {
            &self.lookups
        };
        let _turn = match patience {
            Patience::Wait => tokio::time::timeout(LOOKUP_WAIT, queue.acquire())
                .await
                .map_err(|_| AuthError::Busy)?
                .expect("the lookup semaphores are never closed"),
            Patience::NoWait => queue.try_acquire().map_err(|_| AuthError::Busy)?,
        };
        let seen = self.forgets.load(Ordering::SeqCst);
        let Some(record) = self.catalog.live_api_key(prefix).await.map_err(|e| {
            tracing::warn!(error = %format!("{:#}", anyhow::Error::from(e)), "an API key could not be looked up");
            AuthError::Busy
        })?
        else {
            return Ok(None);
        };
        let claims = key_claims(&record)?;
        self.valid_lately.insert(prefix.to_string(), ());
        Ok(Some(Arc::new(KnownKey {
            tenant_id: record.tenant_id,
            key_hash: record.key_hash,
            expires_at: record.expires_at,
            seen,
            claims: Arc::new(claims),
        })))
    }
}

/// What a key's record lets its holder do, as claims (HTTP and the wire).
pub fn key_claims(record: &ApiKeyRecord) -> Result<Claims, AuthError> {
    let role: Role = record
        .role
        .parse()
        .map_err(|_| AuthError::InvalidCredential("not a valid API key"))?;
    let permissions: Vec<Permission> = serde_json::from_value(record.permissions.clone())
        .map_err(|_| AuthError::InvalidCredential("not a valid API key"))?;
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
