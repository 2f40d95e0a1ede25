//! Onboarding: a new root tenant with its first admin. The tenant is made
//! as `Lifecycle::create` makes it; once it is active, a `tenant_admin`
//! API key is minted for the admin (`TenantKeys::mint_first_admin`), so a
//! tenant's first person can get in without an operator minting a key.
//!
//! Rules:
//! - The key's secret is in this answer only. The API stores a replay of
//!   the answer (`Idempotency-Key`) without it, so a retry mints no second
//!   key and the secret is never kept.
//! - No key is minted for a tenant that failed to become active.

use serde::Serialize;

use crate::control_audit::Actor;
use crate::domain::FirstAdmin;
use crate::tenant_keys::{MintedKey, TenantKeys, TenantKeysError};
use crate::tenants::{Lifecycle, NewTenantInput, TenantView, TenantsError};

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error(transparent)]
    Tenant(#[from] TenantsError),
    #[error(transparent)]
    AdminKey(#[from] TenantKeysError),
}

/// A tenant just made, and its first admin's key when one was asked for.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Onboarded {
    #[serde(flatten)]
    pub tenant: TenantView,
    /// The first admin's `tenant_admin` key (id, name, role, prefix,
    /// created_at, ...). `key` is its secret: in the first answer only,
    /// null in a replay of the same `Idempotency-Key`, which mints no
    /// second key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub admin_key: Option<MintedKey>,
}

impl Onboarded {
    /// The answer as it may be stored for a replay: the admin key's secret
    /// taken out (`key` null).
    pub fn without_secret(value: &serde_json::Value) -> serde_json::Value {
        let mut stored = value.clone();
        if let Some(key) = stored.get_mut("admin_key").and_then(|k| k.get_mut("key")) {
            *key = serde_json::Value::Null;
        }
        stored
    }
}

#[derive(Clone)]
pub struct Onboarding {
    lifecycle: Lifecycle,
    keys: TenantKeys,
}

impl Onboarding {
    pub fn new(lifecycle: Lifecycle, keys: TenantKeys) -> Self {
        Self { lifecycle, keys }
    }

    /// Makes the tenant, then, with `admin`, mints its first admin's key.
    pub async fn create(
        &self,
        actor: &Actor,
        input: NewTenantInput,
        admin: Option<FirstAdmin>,
    ) -> Result<Onboarded, OnboardingError> {
        let tenant = self.lifecycle.create(actor, input).await?;
        let admin_key = match admin {
            Some(admin) => Some(self.keys.mint_first_admin(actor, tenant.id, &admin).await?),
            None => None,
        };
        Ok(Onboarded { tenant, admin_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_answer_keeps_the_key_but_not_its_secret() {
        let answer = serde_json::json!({
            "id": "t", "admin_key": { "id": "k", "key": "tp_secret", "role": "tenant_admin" }
        });
        let stored = Onboarded::without_secret(&answer);
        assert_eq!(stored["admin_key"]["key"], serde_json::Value::Null);
        assert_eq!(stored["admin_key"]["id"], "k");
        assert_eq!(
            answer["admin_key"]["key"], "tp_secret",
            "the answer itself keeps it"
        );
        let plain = serde_json::json!({ "id": "t" });
        assert_eq!(Onboarded::without_secret(&plain), plain);
    }
}
