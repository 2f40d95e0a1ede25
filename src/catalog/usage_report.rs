//! Usage as reported: one tenant's hours or days over a range (days
//! gathered from the rolled-up table and from the hours not rolled up
//! yet), and the fleet's top tenants by one metric.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::TenantId;

/// One bucket (an hour or a day) of a tenant's usage.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsagePoint {
    /// The bucket's start (UTC).
    pub start: DateTime<Utc>,
    pub requests_data: i64,
    pub requests_control: i64,
    pub statement_ms: i64,
    pub rows_read: i64,
    pub rows_written: i64,
    pub connection_ms: i64,
    /// The bucket's last (hour) or largest (day) sample; null when none was taken.
    pub storage_bytes: Option<i64>,
    pub backup_bytes: Option<i64>,
}

/// Hour or day buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Hour,
    Day,
}

/// A metric the fleet's top tenants are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageMetric {
    Requests,
    StatementMs,
    RowsRead,
    RowsWritten,
    ConnectionMs,
    StorageBytes,
    BackupBytes,
}

impl UsageMetric {
    /// Its SQL over a bucket's columns (constant text: never from input).
    fn expr(self) -> &'static str {
        match self {
            Self::Requests => "sum(requests_data + requests_control)",
            Self::StatementMs => "sum(statement_ms)",
            Self::RowsRead => "sum(rows_read)",
            Self::RowsWritten => "sum(rows_written)",
            Self::ConnectionMs => "sum(connection_ms)",
            Self::StorageBytes => "coalesce(max(storage_bytes), 0)",
            Self::BackupBytes => "coalesce(max(backup_bytes), 0)",
        }
    }
}

/// A tenant and its total of the metric over the range.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TopTenant {
    pub tenant_id: TenantId,
    pub slug: String,
    pub value: i64,
}

const SUMS: &str = "sum(requests_data)::int8, sum(requests_control)::int8, sum(statement_ms)::int8,
    sum(rows_read)::int8, sum(rows_written)::int8, sum(connection_ms)::int8";

impl Catalog {
    /// `tenant`'s usage in `[from, to)`, a point per bucket that has any.
    pub async fn tenant_usage(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<UsagePoint>, CatalogError> {
        let sql = match granularity {
            Granularity::Hour => format!(
                "SELECT hour, {SUMS}, max(storage_bytes), max(backup_bytes) FROM usage_hourly
                  WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 GROUP BY hour ORDER BY hour"
            ),
            Granularity::Day => format!(
                "SELECT day, {SUMS}, max(storage_bytes), max(backup_bytes) FROM (
                     SELECT day::timestamp AT TIME ZONE 'UTC' AS day, requests_data, requests_control,
                            statement_ms, rows_read, rows_written, connection_ms, storage_bytes, backup_bytes
                       FROM usage_daily WHERE tenant_id = $1
                     UNION ALL
                     SELECT date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', requests_data,
                            requests_control, statement_ms, rows_read, rows_written, connection_ms,
                            storage_bytes, backup_bytes
                       FROM usage_hourly WHERE tenant_id = $1) b
                  WHERE day >= date_trunc('day', $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                    AND day < $3
                  GROUP BY day ORDER BY day"
            ),
        };
        let client = self.pool().get().await?;
        let rows = client.query(&sql, &[&tenant.as_uuid(), &from, &to]).await?;
        Ok(rows
            .iter()
            .map(|r| UsagePoint {
                start: r.get(0),
                requests_data: r.get(1),
                requests_control: r.get(2),
                statement_ms: r.get(3),
                rows_read: r.get(4),
                rows_written: r.get(5),
                connection_ms: r.get(6),
                storage_bytes: r.get(7),
                backup_bytes: r.get(8),
            })
            .collect())
    }

    /// The `limit` root tenants with the most of `metric` in `[from, to)`.
    pub async fn top_usage(
        &self,
        metric: UsageMetric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<TopTenant>, CatalogError> {
        let value = metric.expr();
        let sql = format!(
            "SELECT t.id, t.slug, v.value FROM (
                 SELECT tenant_id, {value}::int8 AS value FROM (
                     SELECT tenant_id, requests_data, requests_control, statement_ms, rows_read,
                            rows_written, connection_ms, storage_bytes, backup_bytes
                       FROM usage_hourly WHERE hour >= $1 AND hour < $2
                     UNION ALL
                     SELECT tenant_id, requests_data, requests_control, statement_ms, rows_read,
                            rows_written, connection_ms, storage_bytes, backup_bytes
                       FROM usage_daily
                      WHERE day >= ($1 AT TIME ZONE 'UTC')::date AND day < ($2 AT TIME ZONE 'UTC')::date
                 ) b GROUP BY tenant_id) v
             JOIN tenants t ON t.id = v.tenant_id
             ORDER BY v.value DESC, t.slug LIMIT $3"
        );
        let client = self.pool().get().await?;
        let rows = client.query(&sql, &[&from, &to, &limit]).await?;
        Ok(rows
            .iter()
            .map(|r| TopTenant {
                tenant_id: TenantId::from(r.get::<_, Uuid>(0)),
                slug: r.get(1),
                value: r.get(2),
            })
            .collect())
    }
}
