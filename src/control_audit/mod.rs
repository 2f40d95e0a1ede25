//! Control-plane audit events, kept in the catalog: tenant lifecycle changes,
//! API-key changes, and every denied request (the tenant's own database may
//! be the very thing the caller was refused). Data-plane mutations are
//! audited in the tenant database instead (`data::tenant_audit`), in the same
//! transaction as the mutation.
//!
//! A control-plane change spans the catalog and database servers, so it
//! cannot share one transaction with its record: the record is written
//! first (`begin`, result `pending`) and the change runs only once it is
//! there; `end` then sets the result.

mod actor;
mod denials;
mod log;
pub mod throttle;

pub use actor::{audited, Actor, Change};
pub use denials::{DenialCount, DenialKey, Denials};
pub use log::AuditLog;
pub use throttle::Throttle;

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
    pub result: AuditResult,
}

/// An event's `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    /// The change it records has not ended yet (or its process died first).
    Pending,
    Success,
    Failure,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// A record written by `begin`, for `end` to complete.
#[derive(Debug, Clone, Copy)]
pub struct PendingEvent(i64);

pub async fn record(catalog: &Catalog, event: &NewEvent<'_>) -> Result<(), CatalogError> {
    insert(catalog, event).await.map(|_| ())
}

/// Writes `event` as `pending`, before the change it records runs.
pub async fn begin(catalog: &Catalog, event: &NewEvent<'_>) -> Result<PendingEvent, CatalogError> {
    let event = NewEvent {
        result: AuditResult::Pending,
        ..event.clone()
    };
    insert(catalog, &event).await.map(PendingEvent)
}

/// Sets a pending record's result. `subject` names what a successful change
/// made (its tenant and resource), which was unknown when it began.
pub async fn end(
    catalog: &Catalog,
    pending: PendingEvent,
    success: bool,
    subject: Option<(Option<TenantId>, &str)>,
) -> Result<(), CatalogError> {
    let result = if success {
        AuditResult::Success
    } else {
        AuditResult::Failure
    };
    let (tenant, resource) = subject.unzip();
    let client = catalog.pool().get().await?;
    client
        .execute(
            "UPDATE audit_log SET result = $2,
                    tenant_id = CASE WHEN $3 THEN $4 ELSE tenant_id END,
                    resource = coalesce($5, resource)
              WHERE id = $1 AND result = 'pending'",
            &[
                &pending.0,
                &result.as_str(),
                &tenant.is_some(),
                &tenant.flatten().map(|t| t.as_uuid()),
                &resource,
            ],
        )
        .await?;
    Ok(())
}

async fn insert(catalog: &Catalog, event: &NewEvent<'_>) -> Result<i64, CatalogError> {
    let client = catalog.pool().get().await?;
    let row = client
        .query_one(
            "INSERT INTO audit_log (tenant_id, subtenant_id, user_id, action, resource, ip_address, user_agent, result)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &event.tenant_id.map(|t| t.as_uuid()),
                &event.subtenant_id.map(|t| t.as_uuid()),
                &event.user_id,
                &event.action,
                &event.resource,
                &event.ip_address,
                &event.user_agent,
                &event.result.as_str(),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// The fleet's newest events, of every tenant and of none, newest first.
pub async fn recent(catalog: &Catalog, limit: i64) -> Result<Vec<ControlEvent>, CatalogError> {
    let client = catalog.pool().get().await?;
    let rows = client
        .query(
            "SELECT tenant_id, subtenant_id, user_id, action, resource, at, ip_address, user_agent, result
               FROM audit_log ORDER BY id DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    Ok(rows.iter().map(event_from_row).collect())
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
    Ok(rows.iter().map(event_from_row).collect())
}

fn event_from_row(r: &tokio_postgres::Row) -> ControlEvent {
    ControlEvent {
        tenant_id: r.get(0),
        subtenant_id: r.get(1),
        user_id: r.get(2),
        action: r.get(3),
        resource: r.get(4),
        timestamp: r.get(5),
        ip_address: r.get(6),
        user_agent: r.get(7),
        result: r.get(8),
    }
}
