//! Control-plane audit events, kept in the catalog: tenant lifecycle changes,
//! API-key changes, and every denied request (the tenant's own database may
//! be the very thing the caller was refused). Data-plane mutations are
//! audited in the tenant database instead (`data::audit`), in the same
//! transaction as the mutation.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::catalog::{Catalog, CatalogError};
use crate::domain::TenantId;

/// One event, with the seed's AuditLog fields.
#[derive(Debug, Clone, Serialize)]
pub struct ControlEvent {
    pub tenant_id: Option<Uuid>,
    pub subtenant_id: Option<Uuid>,
    pub user_id: String,
    pub action: String,
    pub resource: String,
    pub timestamp: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub result: String,
}

/// What to record.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub tenant_id: Option<TenantId>,
    pub subtenant_id: Option<TenantId>,
    pub user_id: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub success: bool,
}

pub async fn record(catalog: &Catalog, event: &NewEvent<'_>) -> Result<(), CatalogError> {
    let client = catalog.pool().get().await?;
    client
        .execute(
            "INSERT INTO audit_log (tenant_id, subtenant_id, user_id, action, resource, ip_address, user_agent, result)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &event.tenant_id.map(|t| t.as_uuid()),
                &event.subtenant_id.map(|t| t.as_uuid()),
                &event.user_id,
                &event.action,
                &event.resource,
                &event.ip_address,
                &event.user_agent,
                &if event.success { "success" } else { "failure" },
            ],
        )
        .await?;
    Ok(())
}

/// Events about `tenant` (of `subtenant` only, when given), newest first.
pub async fn list(
    catalog: &Catalog,
    tenant: TenantId,
    subtenant: Option<TenantId>,
    limit: i64,
) -> Result<Vec<ControlEvent>, CatalogError> {
    let client = catalog.pool().get().await?;
    let rows = client
        .query(
            "SELECT tenant_id, subtenant_id, user_id, action, resource, at, ip_address, user_agent, result
               FROM audit_log WHERE tenant_id = $1 AND ($2::uuid IS NULL OR subtenant_id = $2)
              ORDER BY id DESC LIMIT $3",
            &[&tenant.as_uuid(), &subtenant.map(|s| s.as_uuid()), &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ControlEvent {
            tenant_id: r.get(0),
            subtenant_id: r.get(1),
            user_id: r.get(2),
            action: r.get(3),
            resource: r.get(4),
            timestamp: r.get(5),
            ip_address: r.get(6),
            user_agent: r.get(7),
            result: r.get(8),
        })
        .collect())
}
