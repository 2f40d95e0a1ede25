//! Quota breaches in force (`quota_breaches`; each change notifies the
//! replicas' routers, whose routes carry them) and the 80 % warnings, one
//! per tenant, quota and period (`quota_warnings`; the insert is the
//! `tenant.quota_warning` event).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::TenantId;

/// A quota a tenant can go over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    StorageBytes,
    RequestsPerMonth,
}

impl QuotaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StorageBytes => "storage_bytes",
            Self::RequestsPerMonth => "requests_per_month",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "storage_bytes" => Some(Self::StorageBytes),
            "requests_per_month" => Some(Self::RequestsPerMonth),
            _ => None,
        }
    }
}

/// A quota a tenant is over: its writes are refused until `resets_at`
/// (`None`: until its use drops under the quota).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuotaBreach {
    pub quota: QuotaKind,
    pub used: i64,
    pub limit: i64,
    pub resets_at: Option<DateTime<Utc>>,
    pub since: DateTime<Utc>,
}

impl QuotaBreach {
    /// Whether it still holds at `now` (a monthly one ends with its month).
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.resets_at.is_none_or(|at| now < at)
    }
}

/// One tenant's standing against one quota.
#[derive(Debug, Clone, Copy)]
pub struct QuotaReading {
    pub tenant: TenantId,
    pub quota: QuotaKind,
    pub used: i64,
    pub limit: i64,
    /// The period the use counts in (a month's first instant).
    pub period_start: DateTime<Utc>,
    pub resets_at: Option<DateTime<Utc>>,
}

impl Catalog {
    /// The breaches recorded for `tenant`.
    pub async fn quota_breaches(&self, tenant: TenantId) -> Result<Vec<QuotaBreach>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT quota, used, quota_limit, resets_at, since FROM quota_breaches
                  WHERE tenant_id = $1 ORDER BY quota",
                &[&tenant.as_uuid()],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(QuotaBreach {
                    quota: QuotaKind::parse(r.get(0))?,
                    used: r.get(1),
                    limit: r.get(2),
                    resets_at: r.get(3),
                    since: r.get(4),
                })
            })
            .collect())
    }

    /// Records what `readings` say: a breach for each at or over its limit
    /// (kept as it is when already recorded with the same limit and reset),
    /// none for each under it, and a warning, once per period, for each at
    /// 80 % or more. Returns the warnings that were new.
    pub async fn record_quota_readings(
        &self,
        readings: &[QuotaReading],
    ) -> Result<u64, CatalogError> {
        if readings.is_empty() {
            return Ok(0);
        }
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let (over, under): (Vec<&QuotaReading>, Vec<&QuotaReading>) =
            readings.iter().partition(|r| r.used >= r.limit);
        for r in &over {
            tx.execute(
                "INSERT INTO quota_breaches AS b (tenant_id, quota, used, quota_limit, resets_at)
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1)
                 ON CONFLICT (tenant_id, quota) DO UPDATE
                    SET used = EXCLUDED.used, quota_limit = EXCLUDED.quota_limit,
                        resets_at = EXCLUDED.resets_at, since = now()
                  WHERE b.quota_limit <> EXCLUDED.quota_limit
                     OR b.resets_at IS DISTINCT FROM EXCLUDED.resets_at",
                &[
                    &r.tenant.as_uuid(),
                    &r.quota.as_str(),
                    &r.used,
                    &r.limit,
                    &r.resets_at,
                ],
            )
            .await?;
        }
        let quotas: Vec<&str> = under.iter().map(|r| r.quota.as_str()).collect();
        let tenants: Vec<Uuid> = under.iter().map(|r| r.tenant.as_uuid()).collect();
        tx.execute(
            "DELETE FROM quota_breaches b USING unnest($1::uuid[], $2::text[]) AS x(t, q)
              WHERE b.tenant_id = x.t AND b.quota = x.q",
            &[&tenants, &quotas],
        )
        .await?;
        let mut warned = 0;
        for r in readings.iter().filter(|r| r.used * 5 >= r.limit * 4) {
            warned += tx
                .execute(
                    "INSERT INTO quota_warnings (tenant_id, quota, period_start, used, quota_limit)
                     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1)
                     ON CONFLICT DO NOTHING",
                    &[
                        &r.tenant.as_uuid(),
                        &r.quota.as_str(),
                        &r.period_start,
                        &r.used,
                        &r.limit,
                    ],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(warned)
    }

    /// `tenant`'s use the quotas weigh: its last storage sample, and its
    /// requests this month (UTC).
    pub async fn quota_use(&self, tenant: TenantId) -> Result<(Option<i64>, i64), CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_one(
                "SELECT (SELECT storage_bytes FROM usage_hourly WHERE tenant_id = $1
                          AND storage_bytes IS NOT NULL ORDER BY hour DESC LIMIT 1),
                        usage_month_requests($1, date_trunc('month', now(), 'UTC'), 'infinity')",
                &[&tenant.as_uuid()],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }

    /// Forgets breaches whose period ended.
    pub async fn expire_quota_breaches(&self) -> Result<u64, CatalogError> {
        let client = self.pool().get().await?;
        Ok(client
            .execute("DELETE FROM quota_breaches WHERE resets_at <= now()", &[])
            .await?)
    }
}
