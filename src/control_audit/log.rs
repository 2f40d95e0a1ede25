//! The control-plane audit log as the API reads it: the fleet's newest
//! events, and a tenant's (or one subtenant's). Queries only.

use super::ControlEvent;
use crate::catalog::{Catalog, CatalogError};
use crate::domain::TenantId;

#[derive(Clone)]
pub struct AuditLog {
    catalog: Catalog,
}

impl AuditLog {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    /// The fleet's newest events, of every tenant and of none, newest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<ControlEvent>, CatalogError> {
        super::recent(&self.catalog, limit).await
    }

    /// The events about `tenant` (a subtenant's only, when `subtenant` is
    /// set), newest first.
    pub async fn of_tenant(
        &self,
        tenant: TenantId,
        subtenant: Option<TenantId>,
        limit: i64,
    ) -> Result<Vec<ControlEvent>, CatalogError> {
        super::list(&self.catalog, tenant, subtenant, limit).await
    }
}
