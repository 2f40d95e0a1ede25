//! A tenant's custom domains: a request whose `Host` is one goes to that
//! tenant (the router reads them through `directory`).
//!
//! Rules:
//! - a domain belongs to one tenant at most; adding another tenant's is
//!   refused (`Taken`).
//! - adding one writes its audit record first; a domain whose record cannot
//!   be written is not added.

use crate::catalog::{Catalog, CatalogError};
use crate::control_audit::{audited, Actor, Change};
use crate::domain::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum CustomDomainsError {
    #[error("no such tenant")]
    TenantNotFound,
    #[error("another tenant has this domain")]
    Taken,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

#[derive(Clone)]
pub struct CustomDomains {
    catalog: Catalog,
}

impl CustomDomains {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    /// Sends requests for `domain` (a lowercase host name) to `tenant`.
    pub async fn add(
        &self,
        actor: &Actor,
        tenant: TenantId,
        domain: &str,
    ) -> Result<(), CustomDomainsError> {
        self.live(tenant).await?;
        let resource = format!("domains/{domain}");
        let what = Change {
            tenant: Some(tenant),
            action: "domains.add",
            resource: &resource,
        };
        let add = async {
            match self.catalog.add_domain(tenant, domain).await? {
                true => Ok(()),
                false => Err(CustomDomainsError::Taken),
            }
        };
        audited(&self.catalog, actor, what, add, |_| None).await
    }

    /// `tenant`'s domains, in order.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<String>, CustomDomainsError> {
        Ok(self.catalog.domains_of(tenant).await?)
    }

    async fn live(&self, id: TenantId) -> Result<(), CustomDomainsError> {
        match self.catalog.get_tenant(id).await? {
            Some(record) if record.purged_at.is_none() => Ok(()),
            _ => Err(CustomDomainsError::TenantNotFound),
        }
    }
}
