//! Setting, showing and removing a tenant's provider: audited commands.
//!
//! Rules:
//! - every address is checked before any connection (`outbound`); the
//!   issuer's discovery document must name the issuer itself, and its keys
//!   must hold at least one this service can verify with, before anything
//!   is stored.
//! - a subtenant uses its root's provider, and sets its own only where
//!   the root allows it (`subtenants_may_override`); a subtenant's
//!   provider grants no tenant_admin and holds its users to the subtenant.
//!   A root cannot take the allowance back while a subtenant has its own.
//! - a mapping's subtenant is a live subtenant of the tenant.
//! - the installation's own issuer is no tenant's.

use serde_json::Value;

use super::keys::usable_keys;
use super::outbound::OutboundError;
use super::spec::{MappedRole, Mapping, ProviderInput, ProviderView};
use super::IdentityProviders;
use crate::catalog::{client_secret_purpose, CatalogError, ProviderRow, TenantRecord};
use crate::control_audit::{audited, Actor, Change};
use crate::domain::TenantId;
use crate::error_code::ErrorCode;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests/identity.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum ProvidersError {
    #[error("no such tenant")]
    TenantNotFound,
    #[error("the tenant has no identity provider")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Refused(OutboundError),
    #[error("{0}")]
    Unreachable(String),
    #[error("another tenant's identity provider has this issuer")]
    IssuerTaken,
    #[error("the tenant's root does not let its subtenants set identity providers of their own")]
    Inherited,
    #[error("{0} of its subtenants have identity providers of their own: remove them first, or keep subtenants_may_override")]
    SubtenantsHaveOwn(usize),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl ProvidersError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TenantNotFound => ErrorCode::TenantNotFound,
            Self::NotFound => ErrorCode::IdentityProviderNotFound,
            Self::Invalid(_) => ErrorCode::IdentityProviderInvalid,
            Self::Refused(OutboundError::Refused { .. } | OutboundError::NotHttps { .. }) => {
                ErrorCode::IdentityProviderAddressRefused
            }
            Self::Refused(_) => ErrorCode::IdentityProviderInvalid,
            Self::Unreachable(_) => ErrorCode::IdentityProviderUnreachable,
            Self::IssuerTaken => ErrorCode::IssuerTaken,
            Self::Inherited => ErrorCode::IdentityProviderInherited,
            Self::SubtenantsHaveOwn(_) => ErrorCode::SubtenantProvidersExist,
            Self::Catalog(_) => ErrorCode::CatalogUnavailable,
        }
    }
}

impl IdentityProviders {
    /// The root of `tenant` (itself for a root), for the caller's reach.
    pub async fn root_of(&self, tenant: TenantId) -> Result<TenantId, ProvidersError> {
        let record = self.live(tenant).await?;
        Ok(record.parent_id.unwrap_or(record.id))
    }

    /// Sets `tenant`'s own provider (see the module's rules).
    pub async fn set(
        &self,
        actor: &Actor,
        tenant: TenantId,
        input: ProviderInput,
    ) -> Result<ProviderView, ProvidersError> {
        input.check().map_err(ProvidersError::Invalid)?;
        let record = self.live(tenant).await?;
        let root = record.parent_id.unwrap_or(record.id);
        if record.parent_id.is_some() {
            let root_provider = self.catalog.identity_provider(root).await?;
            if root_provider.is_some_and(|p| !p.subtenants_may_override) {
                return Err(ProvidersError::Inherited);
            }
        }
        if record.parent_id.is_none() && !input.subtenants_may_override {
            let own = self.catalog.subtenant_identity_providers(root).await?;
            if !own.is_empty() {
                return Err(ProvidersError::SubtenantsHaveOwn(own.len()));
            }
        }
        self.check_mappings(&record, &input.mappings).await?;
        if self.installation_issuer.as_deref() == Some(input.issuer.as_str()) {
            return Err(ProvidersError::Invalid(
                "the issuer is this installation's own".into(),
            ));
        }
        // Every address first: nothing is fetched from a refused one.
        self.outbound
            .check(&input.issuer)
            .await
            .map_err(ProvidersError::Refused)?;
        if let Some(uri) = &input.jwks_uri {
            self.outbound
                .check(uri)
                .await
                .map_err(ProvidersError::Refused)?;
        }
        let (jwks_uri, discovered) = match &input.jwks_uri {
            Some(uri) => (uri.clone(), false),
            None => (self.discover(&input.issuer).await?, true),
        };
        let keys = self
            .outbound
            .get(&jwks_uri)
            .await
            .map_err(|e| unreachable_or_refused(e, "keys"))?;
        if usable_keys(&jwks_uri, &keys.body).is_empty() {
            return Err(ProvidersError::Invalid(format!(
                "{jwks_uri} holds no RS256, ES256 or EdDSA signing key with a `kid`"
            )));
        }
        let previous = self.catalog.identity_provider(tenant).await?;
        let client_secret_enc = match (&input.client_secret, &previous) {
            (Some(secret), _) => Some(
                self.master_key
                    .seal(&client_secret_purpose(tenant), secret.as_bytes()),
            ),
            // Left out: the secret already set for the same client stays.
            (None, Some(p)) if p.client_id == input.client_id => p.client_secret_enc.clone(),
            (None, _) => None,
        };
        let row = ProviderRow {
            tenant_id: tenant,
            issuer: input.issuer,
            jwks_uri,
            discovered,
            audience: input.audience,
            user_claim: input.user_claim,
            groups_claim: input.groups_claim,
            mappings: serde_json::to_value(&input.mappings).expect("mappings serialise"),
            subtenants_may_override: input.subtenants_may_override && record.parent_id.is_none(),
            client_id: input.client_id,
            client_secret_enc,
            created_by: actor.user_id.clone(),
            updated_at: chrono::Utc::now(),
        };
        let resource = format!("tenants/{tenant}/identity-provider");
        let what = Change {
            tenant: Some(root),
            action: "identity_provider.set",
            resource: &resource,
        };
        let put = async {
            self.catalog
                .put_identity_provider(&row)
                .await?
                .map_err(|_| ProvidersError::IssuerTaken)
        };
        let stored = audited(&self.catalog, actor, what, put, |_| None).await?;
        self.changed();
        Ok(view(stored, false))
    }

    /// `tenant`'s provider: its own, or else its root's (`inherited`).
    pub async fn show(&self, tenant: TenantId) -> Result<ProviderView, ProvidersError> {
        let record = self.live(tenant).await?;
        if let Some(own) = self.catalog.identity_provider(tenant).await? {
            return Ok(view(own, false));
        }
        match record.parent_id {
            Some(root) => match self.catalog.identity_provider(root).await? {
                Some(inherited) => Ok(view(inherited, true)),
                None => Err(ProvidersError::NotFound),
            },
            None => Err(ProvidersError::NotFound),
        }
    }

    /// Removes `tenant`'s own provider: its tokens stop working (on other
    /// replicas within seconds), and a subtenant falls back to its root's.
    pub async fn remove(&self, actor: &Actor, tenant: TenantId) -> Result<(), ProvidersError> {
        let record = self.live(tenant).await?;
        let root = record.parent_id.unwrap_or(record.id);
        let resource = format!("tenants/{tenant}/identity-provider");
        let what = Change {
            tenant: Some(root),
            action: "identity_provider.remove",
            resource: &resource,
        };
        let delete = async {
            match self.catalog.delete_identity_provider(tenant).await? {
                true => Ok(()),
                false => Err(ProvidersError::NotFound),
            }
        };
        audited(&self.catalog, actor, what, delete, |_| None).await?;
        self.changed();
        Ok(())
    }

    async fn live(&self, tenant: TenantId) -> Result<TenantRecord, ProvidersError> {
        match self.catalog.get_tenant(tenant).await? {
            Some(r) if r.purged_at.is_none() && r.deleted_at.is_none() => Ok(r),
            _ => Err(ProvidersError::TenantNotFound),
        }
    }

    async fn check_mappings(
        &self,
        record: &TenantRecord,
        mappings: &[Mapping],
    ) -> Result<(), ProvidersError> {
        for (i, m) in mappings.iter().enumerate() {
            let invalid = |why: &str| ProvidersError::Invalid(format!("mappings[{i}]: {why}"));
            if record.parent_id.is_some() {
                if m.role == MappedRole::TenantAdmin {
                    return Err(invalid("a subtenant's provider cannot grant tenant_admin"));
                }
                if m.subtenant_id.is_some_and(|s| s != record.id) {
                    return Err(invalid(
                        "a subtenant's provider holds its users to that subtenant",
                    ));
                }
                continue;
            }
            if let Some(sub) = m.subtenant_id {
                let child = self.catalog.get_tenant(sub).await?;
                let ours =
                    child.is_some_and(|c| c.parent_id == Some(record.id) && c.purged_at.is_none());
                if !ours {
                    return Err(invalid("subtenant_id is not a subtenant of this tenant"));
                }
            }
            if m.role == MappedRole::SubtenantAdmin && m.subtenant_id.is_none() {
                return Err(invalid("subtenant_admin needs subtenant_id"));
            }
        }
        Ok(())
    }

    /// The `jwks_uri` of the issuer's discovery document, which must name
    /// the issuer exactly (OpenID Connect Discovery 1.0, section 4.3).
    async fn discover(&self, issuer: &str) -> Result<String, ProvidersError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let fetched = self
            .outbound
            .get(&url)
            .await
            .map_err(|e| unreachable_or_refused(e, "discovery document"))?;
        let document: Value = serde_json::from_slice(&fetched.body).map_err(|_| {
            ProvidersError::Invalid(format!("{url} is not a JSON discovery document"))
        })?;
        if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(ProvidersError::Invalid(format!(
                "{url} names another issuer than {issuer}"
            )));
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| ProvidersError::Invalid(format!("{url} names no jwks_uri")))?;
        self.outbound
            .check(jwks_uri)
            .await
            .map_err(ProvidersError::Refused)?;
        Ok(jwks_uri.to_string())
    }
}

fn unreachable_or_refused(e: OutboundError, what: &str) -> ProvidersError {
    match e {
        OutboundError::Refused { .. } | OutboundError::NotHttps { .. } | OutboundError::Url(_) => {
            ProvidersError::Refused(e)
        }
        other => ProvidersError::Unreachable(format!("the provider's {what}: {other}")),
    }
}

fn view(row: ProviderRow, inherited: bool) -> ProviderView {
    ProviderView {
        tenant_id: row.tenant_id,
        inherited,
        issuer: row.issuer,
        jwks_uri: row.jwks_uri,
        discovered: row.discovered,
        audience: row.audience,
        user_claim: row.user_claim,
        groups_claim: row.groups_claim,
        mappings: serde_json::from_value(row.mappings).unwrap_or_default(),
        subtenants_may_override: row.subtenants_may_override,
        client_id: row.client_id,
        client_secret_set: row.client_secret_enc.is_some(),
        updated_at: row.updated_at,
    }
}
