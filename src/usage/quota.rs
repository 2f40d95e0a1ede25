//! Quotas: a tenant's use against its tier's quotas, narrowed by its own
//! settings (`tenant_config`), recorded as breaches and 80 % warnings.

use chrono::{DateTime, Datelike, TimeZone, Utc};

use serde::Serialize;

use super::{Usage, UsageError};
use crate::catalog::{MeteredTenant, QuotaKind, QuotaReading};
use crate::domain::TenantId;
use crate::tenant_config::{resolved, TenantConfig};

/// The first instant of `at`'s month, and of the next (UTC).
pub(super) fn month_bounds(at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc
        .with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .expect("the first of a month exists");
    let (y, m) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    let next = Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .expect("the first of a month exists");
    (start, next)
}

/// A root tenant's quotas: (storage bytes, requests a month).
pub(super) fn quotas_of(tenant: &MeteredTenant) -> (i64, i64) {
    let config: TenantConfig = serde_json::from_value(tenant.settings.clone()).unwrap_or_default();
    let limits = resolved(tenant.tier, &config, None);
    (
        i64::from(limits.max_storage_mb) * 1024 * 1024,
        i64::from(limits.max_requests_per_month),
    )
}

/// A root tenant's standing against one quota now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuotaStatus {
    pub quota: QuotaKind,
    /// The last storage sample (none yet: 0), or this month's requests.
    pub used: i64,
    pub limit: i64,
    /// When the use starts again from zero (the next month for requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<DateTime<Utc>>,
    /// Writes are refused: a breach is recorded and in force.
    pub exceeded: bool,
}

impl Usage {
    /// The quotas of `tenant`'s root (a subtenant lives in its root's
    /// database): use, limit, reset, and whether writes are refused.
    pub async fn quotas(&self, tenant: TenantId) -> Result<Vec<QuotaStatus>, UsageError> {
        let record = self
            .catalog
            .get_tenant(tenant)
            .await?
            .ok_or(UsageError::NotFound)?;
        let root = record.parent_id.unwrap_or(tenant);
        let Some(metered) = self.catalog.metered_tenants_by_id(&[root]).await?.pop() else {
            // Not placed (being made, failed or purged): no use to weigh.
            return Ok(Vec::new());
        };
        let (storage_limit, request_limit) = quotas_of(&metered);
        let (storage, requests) = self.catalog.quota_use(root).await?;
        let now = Utc::now();
        let breaches = self.catalog.quota_breaches(root).await?;
        let exceeded = |q: QuotaKind| breaches.iter().any(|b| b.quota == q && b.in_force(now));
        Ok(vec![
            QuotaStatus {
                quota: QuotaKind::StorageBytes,
                used: storage.unwrap_or(0),
                limit: storage_limit,
                resets_at: None,
                exceeded: exceeded(QuotaKind::StorageBytes),
            },
            QuotaStatus {
                quota: QuotaKind::RequestsPerMonth,
                used: requests,
                limit: request_limit,
                resets_at: Some(month_bounds(now).1),
                exceeded: exceeded(QuotaKind::RequestsPerMonth),
            },
        ])
    }

    /// Checks the month's request totals of the tenants a flush touched.
    pub(super) async fn check_requests(
        &self,
        months: &[(TenantId, i64)],
    ) -> Result<(), UsageError> {
        if months.is_empty() {
            return Ok(());
        }
        let ids: Vec<TenantId> = months.iter().map(|m| m.0).collect();
        let tenants = self.catalog.metered_tenants_by_id(&ids).await?;
        let (start, next) = month_bounds(Utc::now());
        let readings: Vec<QuotaReading> = tenants
            .iter()
            .filter_map(|t| {
                let used = months.iter().find(|m| m.0 == t.id)?.1;
                Some(QuotaReading {
                    tenant: t.id,
                    quota: QuotaKind::RequestsPerMonth,
                    used,
                    limit: quotas_of(t).1,
                    period_start: start,
                    resets_at: Some(next),
                })
            })
            .collect();
        self.catalog.record_quota_readings(&readings).await?;
        Ok(())
    }

    /// Checks the storage of sampled tenants.
    pub(super) async fn check_storage(
        &self,
        sampled: &[(MeteredTenant, i64)],
    ) -> Result<(), UsageError> {
        let (start, _) = month_bounds(Utc::now());
        let readings: Vec<QuotaReading> = sampled
            .iter()
            .map(|(t, bytes)| QuotaReading {
                tenant: t.id,
                quota: QuotaKind::StorageBytes,
                used: *bytes,
                limit: quotas_of(t).0,
                period_start: start,
                resets_at: None,
            })
            .collect();
        self.catalog.record_quota_readings(&readings).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_runs_from_its_first_instant_to_the_next_months_across_a_year() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let (start, next) = month_bounds(at);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(next, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn a_tenants_own_quota_narrows_its_tiers_and_never_widens_it() {
        let tenant = |settings: serde_json::Value| MeteredTenant {
            id: TenantId::generate(),
            db_name: "ai_care_tenant_x".into(),
            tier: crate::domain::Tier::Free,
            settings,
        };
        let (storage, requests) = quotas_of(&tenant(serde_json::json!({})));
        assert_eq!((storage, requests), (512 * 1024 * 1024, 100_000));
        let narrowed =
            tenant(serde_json::json!({"features": {"maxStorageMb": 1, "maxRequestsPerMonth": 10}}));
        assert_eq!(quotas_of(&narrowed), (1024 * 1024, 10));
        let wider = tenant(serde_json::json!({"features": {"maxRequestsPerMonth": 1000000000}}));
        assert_eq!(quotas_of(&wider).1, 100_000);
    }
}
