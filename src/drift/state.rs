//! What is known of drift, as the API, the CLI and the console show it:
//! one tenant's record, the fleet's drifted tenants, counts and the last
//! scan; and checking one tenant now.
//!
//! Rule: a record checked against an older version than the tenant's now
//! is shown `unknown` and `stale`, never `in_sync` or `drifted`; a tenant
//! never checked is `unknown`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::scan_run::Outcome;
use super::scans::{ScanError, Scans};
use super::ObjectDiff;
use crate::catalog::{DriftCounts, DriftRecord, DriftState, ScanRecord, ScanTarget, TenantRecord};
use crate::control_audit::{audited, Actor, Change};
use crate::domain::TenantId;

/// Drifted tenants a listing shows at most.
const LIST_LIMIT: i64 = 1000;

/// One tenant's drift as it stands now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantDrift {
    pub tenant_id: TenantId,
    pub slug: String,
    /// in_sync, drifted or unknown (never checked, stale, or not checkable).
    pub state: DriftState,
    /// The record is about an older version than the tenant's now.
    pub stale: bool,
    /// The version it was checked against.
    pub checked_version: Option<i32>,
    /// The tenant's recorded schema version now.
    pub schema_version: i32,
    pub fingerprint: Option<String>,
    pub expected_fingerprint: Option<String>,
    /// Per object: added, missing or changed, with the DDL that puts it back.
    pub diff: Vec<ObjectDiff>,
    /// Why the state is unknown.
    pub reason: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    pub scan_id: Option<Uuid>,
}

impl TenantDrift {
    fn of(record: DriftRecord) -> Self {
        let stale = !record.is_current();
        let reason = if stale {
            Some(format!(
                "checked at version {}; the tenant is at version {} now",
                record.version, record.schema_version
            ))
        } else {
            record.reason.clone()
        };
        Self {
            tenant_id: record.tenant_id,
            slug: record.slug.clone(),
            state: record.effective(),
            stale,
            checked_version: Some(record.version),
            schema_version: record.schema_version,
            fingerprint: record.fingerprint,
            expected_fingerprint: record.expected_fingerprint,
            diff: serde_json::from_value(record.diff).unwrap_or_default(),
            reason,
            checked_at: Some(record.checked_at),
            scan_id: record.scan_id,
        }
    }

    fn never_checked(tenant: &TenantRecord) -> Self {
        Self {
            tenant_id: tenant.id,
            slug: tenant.slug.as_str().to_string(),
            state: DriftState::Unknown,
            stale: false,
            checked_version: None,
            schema_version: tenant.schema_version,
            fingerprint: None,
            expected_fingerprint: None,
            diff: Vec::new(),
            reason: Some("never checked".into()),
            checked_at: None,
            scan_id: None,
        }
    }
}

/// The fleet's drift: counts by state, the last scan, the drifted tenants.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DriftReport {
    pub counts: DriftCounts,
    pub last_scan: Option<ScanRecord>,
    pub drifted: Vec<TenantDrift>,
}

/// A scan's end: its record and the tenants it found drifted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScanSummary {
    pub scan: ScanRecord,
    pub drifted: Vec<TenantDrift>,
}

impl Scans {
    /// A root tenant of the fleet, or why it cannot be checked.
    async fn root(&self, id: TenantId) -> Result<TenantRecord, ScanError> {
        let tenant = self
            .catalog
            .get_tenant(id)
            .await?
            .filter(|t| t.purged_at.is_none())
            .ok_or(ScanError::TenantNotFound)?;
        if tenant.parent_id.is_some() {
            return Err(ScanError::NotRoot);
        }
        Ok(tenant)
    }

    /// `id`'s drift as recorded; `unknown` when never checked.
    pub async fn tenant(&self, id: TenantId) -> Result<TenantDrift, ScanError> {
        let tenant = self.root(id).await?;
        Ok(match self.catalog.tenant_drift(id).await? {
            Some(record) => TenantDrift::of(record),
            None => TenantDrift::never_checked(&tenant),
        })
    }

    /// Checks `id` now and records what was found (under its audit record).
    pub async fn check_tenant(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<TenantDrift, ScanError> {
        let resource = format!("tenants/{id}/drift");
        let what = Change {
            tenant: Some(id),
            action: "drift.check",
            resource: &resource,
        };
        let check = async {
            let tenant = self.root(id).await?;
            let Some(db_name) = tenant.db_name.clone() else {
                return Err(ScanError::NotRoot);
            };
            let target = ScanTarget {
                tenant_id: id,
                db_server_id: tenant.db_server_id,
                db_name,
                schema_version: tenant.schema_version,
            };
            let servers = self.server_slots().await?;
            let outcome: Outcome = self.check_target(&target, &servers).await;
            self.catalog
                .record_drift(id, &outcome.record(None), None)
                .await?;
            self.tenant(id).await
        };
        audited(&self.catalog, actor, what, check, |_| None).await
    }

    /// The fleet's drift: counts, the last scan, the drifted tenants.
    pub async fn report(&self) -> Result<DriftReport, ScanError> {
        Ok(DriftReport {
            counts: self.catalog.drift_counts().await?,
            last_scan: self.catalog.last_drift_scan().await?,
            drifted: self.drifted(None).await?,
        })
    }

    /// The tenants drifted now (those `scan` recorded, if given).
    async fn drifted(&self, scan: Option<Uuid>) -> Result<Vec<TenantDrift>, ScanError> {
        Ok(self
            .catalog
            .drifted_tenants(LIST_LIMIT)
            .await?
            .into_iter()
            .filter(|r| scan.is_none() || r.scan_id == scan)
            .map(TenantDrift::of)
            .collect())
    }

    /// A scan's end as the API answers it.
    pub async fn summary(&self, scan: ScanRecord) -> Result<ScanSummary, ScanError> {
        let drifted = self.drifted(Some(scan.id)).await?;
        Ok(ScanSummary { scan, drifted })
    }
}
