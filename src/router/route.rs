//! A tenant's route: where its rows live, whether it may be served, and what
//! its configuration allows, read through the directory.

use std::sync::Arc;

use uuid::Uuid;

use super::{RouterError, RouterInner};
use crate::directory::{CatalogError, DbServer, QuotaBreach, ServerState, TenantRecord};
use crate::domain::{TenantId, TenantStatus};
use crate::tenant_config::{resolved, Resolved, TenantConfig};

#[derive(Debug)]
pub struct Route {
    /// The tenant that was asked for: a root tenant or a subtenant.
    pub tenant: TenantRecord,
    /// The tenant that owns the database (the same as `tenant` for a root).
    pub root: TenantRecord,
    pub server: DbServer,
    /// The requested tenant's effective features and limits.
    pub features: Resolved,
    /// The root tenant's: its limits cap the total over all its subtenants.
    pub root_features: Resolved,
    /// The root's quotas it is over: its writes are refused while one holds.
    pub quota_breaches: Vec<QuotaBreach>,
}

impl Route {
    pub fn subtenant(&self) -> Option<TenantId> {
        self.tenant.parent_id.map(|_| self.tenant.id)
    }

    /// The quota breach that refuses a write now, if one does.
    pub fn quota_breach(&self) -> Option<&QuotaBreach> {
        let now = chrono::Utc::now();
        self.quota_breaches.iter().find(|b| b.in_force(now))
    }
}

fn servable(record: &TenantRecord) -> Result<(), RouterError> {
    if record.purged_at.is_some() {
        return Err(RouterError::NotFound);
    }
    match record.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Suspended => Err(RouterError::Suspended),
        TenantStatus::Deleted | TenantStatus::Deleting => Err(RouterError::Deleted),
        other => Err(RouterError::NotReady(other)),
    }
}

fn config(record: &TenantRecord) -> TenantConfig {
    serde_json::from_value(record.settings.clone()).unwrap_or_default()
}

/// A catalog failure as the router reports it: unreachable (the last known
/// route may still serve), or a failed lookup.
pub(super) fn lookup_failed(e: CatalogError) -> RouterError {
    match e {
        CatalogError::Unavailable(_) | CatalogError::Connect(_) | CatalogError::Lost(_) => {
            RouterError::CatalogUnavailable(Arc::new(e))
        }
        other => RouterError::Lookup(Arc::new(other)),
    }
}

/// The server row a route names, from the router's cache or the catalog.
async fn server_row(inner: &RouterInner, id: Uuid) -> Result<DbServer, RouterError> {
    if let Some(server) = inner.servers.get(&id).await {
        return Ok(server);
    }
    let server = inner
        .directory
        .server(id)
        .await
        .map_err(lookup_failed)?
        .ok_or(RouterError::Inconsistent(
            "a tenant placed on an unknown server",
        ))?;
    inner.servers.insert(id, server.clone()).await;
    Ok(server)
}

pub(super) async fn load(inner: &RouterInner, id: TenantId) -> Result<Route, RouterError> {
    let directory = &inner.directory;
    let tenant = directory
        .tenant(id)
        .await
        .map_err(lookup_failed)?
        .ok_or(RouterError::NotFound)?;
    let root = match tenant.parent_id {
        Some(parent) => directory
            .tenant(parent)
            .await
            .map_err(lookup_failed)?
            .ok_or(RouterError::NotFound)?,
        None => tenant.clone(),
    };
    servable(&root)?;
    servable(&tenant)?;
    let server_id = root
        .db_server_id
        .ok_or(RouterError::Inconsistent("a root tenant without placement"))?;
    let server = server_row(inner, server_id).await?;
    if server.state == ServerState::Down {
        return Err(RouterError::ServerDown);
    }
    let child = (tenant.parent_id.is_some()).then(|| config(&tenant));
    let root_config = config(&root);
    let features = resolved(root.tier, &root_config, child.as_ref());
    let root_features = resolved(root.tier, &root_config, None);
    let quota_breaches = directory
        .quota_breaches(root.id)
        .await
        .map_err(lookup_failed)?;
    Ok(Route {
        tenant,
        root,
        server,
        features,
        root_features,
        quota_breaches,
    })
}
