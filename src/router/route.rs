//! A tenant's route: where its rows live, whether it may be served, and what
//! its configuration allows.

use secrecy::SecretString;

use crate::catalog::{DbServer, ServerState, TenantRecord};
use crate::domain::{TenantId, TenantStatus};
use crate::tenant_config::{resolved, Resolved, TenantConfig};
use crate::tenants::Tenants;

/// Why a tenant cannot be served. Cloneable: the route cache shares it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    #[error("no such tenant")]
    NotFound,
    #[error("the tenant is suspended")]
    Suspended,
    #[error("the tenant is deleted")]
    Deleted,
    #[error("the tenant is not ready ({0:?})")]
    NotReady(TenantStatus),
    #[error("the tenant's database server is down")]
    ServerDown,
    #[error("the catalog is unreachable")]
    CatalogUnavailable,
    #[error("route lookup failed: {0}")]
    Internal(String),
}

#[derive(Debug)]
pub struct Route {
    /// The tenant that was asked for: a root tenant or a subtenant.
    pub tenant: TenantRecord,
    /// The tenant that owns the database (the same as `tenant` for a root).
    pub root: TenantRecord,
    pub server: DbServer,
    pub password: SecretString,
    /// The requested tenant's effective features and limits.
    pub features: Resolved,
    /// The root tenant's: its limits cap the total over all its subtenants.
    pub root_features: Resolved,
}

impl Route {
    pub fn subtenant(&self) -> Option<TenantId> {
        self.tenant.parent_id.map(|_| self.tenant.id)
    }
}

fn servable(record: &TenantRecord) -> Result<(), RouteError> {
    if record.purged_at.is_some() {
        return Err(RouteError::NotFound);
    }
    match record.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Suspended => Err(RouteError::Suspended),
        TenantStatus::Deleted | TenantStatus::Deleting => Err(RouteError::Deleted),
        other => Err(RouteError::NotReady(other)),
    }
}

fn config(record: &TenantRecord) -> TenantConfig {
    serde_json::from_value(record.settings.clone()).unwrap_or_default()
}

pub(super) async fn load(tenants: &Tenants, id: TenantId) -> Result<Route, RouteError> {
    let internal = |e: &crate::catalog::CatalogError| match e {
        crate::catalog::CatalogError::Unavailable(_) | crate::catalog::CatalogError::Connect(_) => {
            RouteError::CatalogUnavailable
        }
        other => RouteError::Internal(other.to_string()),
    };
    let catalog = tenants.catalog();
    let tenant = catalog
        .get_tenant(id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or(RouteError::NotFound)?;
    let root = match tenant.parent_id {
        Some(parent) => catalog
            .get_tenant(parent)
            .await
            .map_err(|e| internal(&e))?
            .ok_or(RouteError::NotFound)?,
        None => tenant.clone(),
    };
    servable(&root)?;
    servable(&tenant)?;
    let server_id = root
        .db_server_id
        .ok_or_else(|| RouteError::Internal("root tenant without placement".into()))?;
    let server = catalog
        .get_server(server_id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| RouteError::Internal("tenant placed on an unknown server".into()))?;
    if server.state == ServerState::Down {
        return Err(RouteError::ServerDown);
    }
    let password = tenants
        .role_password(&root)
        .map_err(|e| RouteError::Internal(e.to_string()))?;
    let child = (tenant.parent_id.is_some()).then(|| config(&tenant));
    let root_config = config(&root);
    let features = resolved(root.tier, &root_config, child.as_ref());
    let root_features = resolved(root.tier, &root_config, None);
    Ok(Route {
        tenant,
        root,
        server,
        password,
        features,
        root_features,
    })
}
