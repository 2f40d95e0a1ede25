//! A tenant's API keys as commands and queries: minting one, listing them,
//! revoking one. The API and the console call these; verifying a presented
//! key is `auth::api_key`.
//!
//! Rules:
//! - a key belongs to a root tenant; one bound to a subtenant names a
//!   subtenant of that tenant.
//! - no key can do more than the principal that mints it
//!   (`Principal::may_grant`), nor outlive it: a key minted by a credential
//!   that expires gets at most that expiry. A longer `ttl_secs`, or none, is
//!   capped to it and the key says so (`expiry_capped`), rather than
//!   refused: a client that asks for no expiry still gets a working key.
//!   The one exception is a new tenant's first admin's key
//!   (`mint_first_admin`): minted for the tenant by whoever may create
//!   tenants, it has no end, or the tenant would be locked out when the
//!   operator's token expires.
//! - a key minted with a key records its maker; revoking a key revokes all
//!   it minted, transitively (`catalog::api_keys`).
//! - minting and revoking write their audit record first; a revoked key is
//!   forgotten by this replica at once, by the others on the catalog's notice.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::api_key::{self, ApiKeys};
use crate::auth::{AuthError, Permission, Principal, Role};
use crate::catalog::{ApiKeyRecord, Catalog, CatalogError, ListedKey, Minted};
use crate::control_audit::{audited, Actor, Change};
use crate::domain::{FirstAdmin, TenantId};

#[derive(Debug, thiserror::Error)]
pub enum TenantKeysError {
    #[error("no such tenant")]
    TenantNotFound,
    #[error("API keys belong to a root tenant")]
    NotRoot,
    #[error("no such subtenant of this tenant")]
    SubtenantNotFound,
    #[error("no such live API key")]
    KeyNotFound,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A key to mint, as the caller parsed it.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
    pub permissions: Vec<Permission>,
    /// Binds the key to this subtenant of the tenant.
    pub subtenant: Option<TenantId>,
    /// Seconds until the key stops working; `None`: no end of its own.
    pub ttl_secs: Option<u32>,
}

/// A key just minted: the secret is here and nowhere else, ever.
#[derive(Debug, Clone, Serialize)]
pub struct MintedKey {
    #[serde(flatten)]
    pub record: ApiKeyRecord,
    pub key: String,
    pub minted_by: Option<Uuid>,
    pub expiry_capped: bool,
}

/// A page of keys, oldest first, without their secrets.
#[derive(Debug, Serialize)]
pub struct KeyPage {
    pub api_keys: Vec<ListedKey>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Clone)]
pub struct TenantKeys {
    catalog: Catalog,
    verified: ApiKeys,
    /// Live keys a tenant may hold (`tenants.max_api_keys`).
    max_keys: u32,
}

impl TenantKeys {
    pub fn new(catalog: Catalog, verified: ApiKeys, max_keys: u32) -> Self {
        Self {
            catalog,
            verified,
            max_keys,
        }
    }

    /// Mints a key of `tenant` for `minter` (see the module's rules).
    pub async fn mint(
        &self,
        actor: &Actor,
        minter: &Principal,
        tenant: TenantId,
        new: NewKey,
    ) -> Result<MintedKey, TenantKeysError> {
        minter.may_grant(new.role, &new.permissions, new.subtenant)?;
        let root = self.live(tenant).await?;
        if root.parent_id.is_some() {
            return Err(TenantKeysError::NotRoot);
        }
        if let Some(sub) = new.subtenant {
            if self.live(sub).await?.parent_id != Some(tenant) {
                return Err(TenantKeysError::SubtenantNotFound);
            }
        }
        let asked = new
            .ttl_secs
            .map(|secs| Utc::now() + chrono::Duration::seconds(i64::from(secs)));
        let (expires_at, expiry_capped) = capped_expiry(asked, minter.expires_at());
        // A key minted with a key is revoked with it.
        let minted_by = minter
            .user_id()
            .strip_prefix("apikey:")
            .and_then(|id| id.parse::<Uuid>().ok());
        let issued = api_key::issue(
            tenant,
            new.subtenant,
            new.name,
            new.role,
            new.permissions,
            minter.user_id(),
            expires_at,
        );
        self.store(actor, issued, minted_by, expiry_capped).await
    }

    /// Mints the `tenant_admin` key of a tenant's first admin, as the
    /// tenant is made (`onboarding`). It has no end of its own: it is how
    /// the tenant's first person gets in, and only a caller who may create
    /// tenants gets one.
    pub async fn mint_first_admin(
        &self,
        actor: &Actor,
        tenant: TenantId,
        admin: &FirstAdmin,
    ) -> Result<MintedKey, TenantKeysError> {
        // The name column holds 200 characters.
        let name: String = format!("first admin {}", admin.email())
            .chars()
            .take(200)
            .collect();
        let issued = api_key::issue(
            tenant,
            None,
            name,
            Role::TenantAdmin,
            Vec::new(),
            &actor.user_id,
            None,
        );
        let minted = self.store(actor, issued, None, false).await?;
        // A user of the tenant's identity provider with this subject is
        // its tenant_admin (`auth::providers`).
        self.catalog
            .record_first_admin(tenant, admin.subject(), admin.email())
            .await?;
        Ok(minted)
    }

    /// Stores a key just issued, audited, within the tenant's cap.
    async fn store(
        &self,
        actor: &Actor,
        issued: api_key::IssuedKey,
        minted_by: Option<Uuid>,
        expiry_capped: bool,
    ) -> Result<MintedKey, TenantKeysError> {
        let tenant = issued.record.tenant_id;
        let resource = format!("api_keys/{}", issued.record.id);
        let what = Change {
            tenant: Some(tenant),
            action: "api_keys.create",
            resource: &resource,
        };
        let insert = async {
            match self
                .catalog
                .insert_api_key(&issued.record, minted_by, self.max_keys)
                .await?
            {
                Minted::Stored => Ok::<_, TenantKeysError>(()),
                // Revoked (or expired) since it was checked: as if it never was.
                Minted::MakerGone => {
                    Err(AuthError::InvalidCredential("the API key was revoked").into())
                }
            }
        };
        audited(&self.catalog, actor, what, insert, |_| None).await?;
        // The gateway's list of the tenant's keys here has it at once
        // (other replicas read it again at the key's first failed proof).
        self.verified.wire().forget_tenant(tenant);
        Ok(MintedKey {
            record: issued.record,
            key: issued.key,
            minted_by,
            expiry_capped,
        })
    }

    /// A page of `tenant`'s keys after `cursor`, oldest first.
    pub async fn list(
        &self,
        tenant: TenantId,
        cursor: Option<Uuid>,
        limit: i64,
    ) -> Result<KeyPage, TenantKeysError> {
        let mut keys = self
            .catalog
            .list_api_keys(tenant, cursor, limit + 1)
            .await?;
        let more = keys.len() as i64 > limit;
        keys.truncate(limit as usize);
        let next_cursor = more.then(|| keys.last().map(|k| k.record.id)).flatten();
        Ok(KeyPage {
            api_keys: keys,
            next_cursor,
        })
    }

    /// Revokes `key` of `tenant`, with every key it minted.
    pub async fn revoke(
        &self,
        actor: &Actor,
        tenant: TenantId,
        key: Uuid,
    ) -> Result<(), TenantKeysError> {
        let resource = format!("api_keys/{key}");
        let what = Change {
            tenant: Some(tenant),
            action: "api_keys.revoke",
            resource: &resource,
        };
        let revoke = async {
            if self.catalog.revoke_api_key(tenant, key).await?.is_empty() {
                return Err(TenantKeysError::KeyNotFound);
            }
            // At once here; other replicas hear the catalog's notice.
            self.verified.forget_tenant(tenant);
            Ok(())
        };
        audited(&self.catalog, actor, what, revoke, |_| None).await
    }

    /// A tenant that is not purged.
    async fn live(&self, id: TenantId) -> Result<crate::catalog::TenantRecord, TenantKeysError> {
        match self.catalog.get_tenant(id).await? {
            Some(record) if record.purged_at.is_none() => Ok(record),
            _ => Err(TenantKeysError::TenantNotFound),
        }
    }
}

/// The expiry a key gets: the one asked for (`None`: none), capped to its
/// maker's (`maker_exp`, seconds since the epoch; `i64::MAX`: none).
/// Returns it and whether it was capped.
fn capped_expiry(asked: Option<DateTime<Utc>>, maker_exp: i64) -> (Option<DateTime<Utc>>, bool) {
    let Some(limit) = (maker_exp != i64::MAX)
        .then(|| DateTime::from_timestamp(maker_exp, 0))
        .flatten()
    else {
        return (asked, false);
    };
    match asked {
        Some(at) if at <= limit => (Some(at), false),
        _ => (Some(limit), true),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::capped_expiry;

    #[test]
    fn a_key_asking_for_no_end_or_a_later_end_than_its_maker_gets_the_makers_end_and_says_so() {
        let now = Utc::now();
        let maker = (now + Duration::hours(1)).timestamp();
        let makers_end = chrono::DateTime::from_timestamp(maker, 0);
        assert_eq!(capped_expiry(None, maker), (makers_end, true));
        assert_eq!(
            capped_expiry(Some(now + Duration::days(3650)), maker),
            (makers_end, true)
        );
        let sooner = now + Duration::minutes(5);
        assert_eq!(capped_expiry(Some(sooner), maker), (Some(sooner), false));
        // A maker that never expires leaves the request as it is.
        assert_eq!(capped_expiry(None, i64::MAX), (None, false));
        assert_eq!(capped_expiry(Some(sooner), i64::MAX), (Some(sooner), false));
    }
}
