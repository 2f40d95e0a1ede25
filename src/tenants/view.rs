//! What the API and the CLI show of a tenant. Secrets never appear here:
//! stored settings are already redacted.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Tenants, TenantsError};
use crate::catalog::{TenantFilter, TenantRecord};
use crate::domain::{TenantId, TenantStatus, Tier};
use crate::tenant_config::{effective, TenantConfig};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub parent_id: Option<TenantId>,
    pub tier: Tier,
    pub status: TenantStatus,
    /// The database holding this tenant's rows: its own, or its root's.
    pub database: Option<String>,
    pub server_id: Option<Uuid>,
    pub schema_version: i32,
    /// The tenant's own settings (integration secrets redacted).
    #[schema(value_type = Object)]
    pub settings: TenantConfig,
    /// Tier defaults, overlaid with the parent's settings, then the tenant's own.
    #[schema(value_type = Object)]
    pub effective_settings: TenantConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The operation that made the tenant (in a create's answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<TenantId>,
}

/// Stored settings; a row that fails to parse shows as empty rather than failing the read.
pub(crate) fn stored_config(record: &TenantRecord) -> TenantConfig {
    serde_json::from_value(record.settings.clone()).unwrap_or_default()
}

pub(crate) fn build_view(record: &TenantRecord, root: Option<&TenantRecord>) -> TenantView {
    let own = stored_config(record);
    let (placement, effective_settings) = match root {
        Some(root) => (root, effective(root.tier, &stored_config(root), Some(&own))),
        None => (record, effective(record.tier, &own, None)),
    };
    TenantView {
        id: record.id,
        slug: record.slug.to_string(),
        name: record.name.clone(),
        parent_id: record.parent_id,
        tier: placement.tier,
        status: record.status,
        database: placement.db_name.as_ref().map(|d| d.as_str().to_string()),
        server_id: placement.db_server_id,
        schema_version: placement.schema_version,
        settings: own,
        effective_settings,
        error: record.error.clone(),
        created_at: record.created_at,
        updated_at: record.updated_at,
        deleted_at: record.deleted_at,
        operation_id: None,
    }
}

impl Tenants {
    /// One tenant with its effective configuration.
    pub async fn show(&self, id: TenantId) -> Result<TenantView, TenantsError> {
        let record = self.record(id).await?;
        self.view(&record).await
    }

    pub(crate) async fn view(&self, record: &TenantRecord) -> Result<TenantView, TenantsError> {
        match record.parent_id {
            Some(parent) => {
                let root = self.record(parent).await?;
                Ok(build_view(record, Some(&root)))
            }
            None => Ok(build_view(record, None)),
        }
    }

    /// A page of tenants. `limit` is clamped to 1..=200.
    pub async fn list(&self, mut filter: TenantFilter) -> Result<TenantList, TenantsError> {
        filter.limit = filter.limit.clamp(1, 200);
        let records = self.catalog.list_tenants(&filter).await?;
        let mut roots = std::collections::HashMap::new();
        let mut tenants = Vec::with_capacity(records.len());
        for record in &records {
            let root = match record.parent_id {
                Some(parent) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = roots.entry(parent) {
                        slot.insert(self.record(parent).await?);
                    }
                    roots.get(&parent)
                }
                None => None,
            };
            tenants.push(build_view(record, root));
        }
        let next_cursor = (records.len() as i64 == filter.limit)
            .then(|| records.last().map(|r| r.id))
            .flatten();
        Ok(TenantList {
            tenants,
            next_cursor,
        })
    }
}
