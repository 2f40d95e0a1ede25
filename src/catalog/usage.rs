//! Usage per root tenant and hour (`usage_hourly`), with each hour's
//! month-to-date request total, the journal segments already added, the
//! database counters' last samples, and the roll-up of old hours into days.
//!
//! Rules:
//! - Metering adds at most one row per tenant and hour. An hour's
//!   `month_requests` is its month's requests up to and including it: a
//!   new hour starts from the total before it, and a late flush into an
//!   earlier hour grows the hours after it too. Flushes and samples take
//!   `USAGE_LOCK`, so neither adds an hour the other's carry misses.
//! - A segment's counts and its `(writer, seq)` row commit together, and a
//!   segment already recorded adds nothing: a flush retried after a crash,
//!   or a dead replica's journal flushed by its successor, counts once.
//! - A sample adds what each cumulative counter grew since the last one
//!   (all of it after a statistics reset), under `USAGE_LOCK`, so
//!   two samplers never both add the same growth.
//! - Rows for an id that is not a tenant are dropped, never an error: a
//!   request for a tenant that never existed counts for nobody.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::{TenantId, Tier};

/// Advisory lock key ("tpusage") serialising flushes and samples: both
/// carry month totals forward into the hours they add.
const USAGE_LOCK: i64 = 0x0074_7075_7361_6765;

/// Requests of one tenant in one hour, by plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCounts {
    pub tenant: TenantId,
    pub hour: DateTime<Utc>,
    pub data: i64,
    pub control: i64,
}

/// One tenant database's size and cumulative counters, as sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSample {
    pub tenant: TenantId,
    pub storage_bytes: i64,
    pub rows_read: i64,
    pub rows_written: i64,
    pub statement_ms: f64,
    pub connection_ms: f64,
    pub stats_reset: Option<DateTime<Utc>>,
}

/// A root tenant whose database a sample reads, and what sets its quotas.
#[derive(Debug, Clone)]
pub struct MeteredTenant {
    pub id: TenantId,
    pub db_name: String,
    pub tier: Tier,
    pub settings: serde_json::Value,
}

/// What a sample recorded for one tenant.
#[derive(Debug, Clone, Copy)]
pub struct Sampled {
    pub tenant: TenantId,
    pub storage_bytes: i64,
}

impl Catalog {
    /// Adds segment `(writer, seq)`'s counts; `None` when it was added
    /// before. Else the current month's request total of each tenant it
    /// touched.
    pub async fn flush_usage_segment(
        &self,
        writer: Uuid,
        seq: i64,
        counts: &[RequestCounts],
    ) -> Result<Option<Vec<(TenantId, i64)>>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&USAGE_LOCK])
            .await?;
        let new = tx
            .execute(
                "INSERT INTO usage_segments (writer, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&writer, &seq],
            )
            .await?;
        if new == 0 {
            return Ok(None);
        }
        let tenants: Vec<Uuid> = counts.iter().map(|c| c.tenant.as_uuid()).collect();
        let hours: Vec<DateTime<Utc>> = counts.iter().map(|c| c.hour).collect();
        let data: Vec<i64> = counts.iter().map(|c| c.data).collect();
        let control: Vec<i64> = counts.iter().map(|c| c.control).collect();
        // A new hour starts from its month's total before it; the hours
        // after one that grew (a late flush) grow with it.
        tx.execute(
            "INSERT INTO usage_hourly AS u (tenant_id, hour, requests_data, requests_control,
                    month_requests)
             SELECT x.t, x.h, x.d, x.c,
                    usage_month_requests(x.t, date_trunc('month', x.h, 'UTC'), x.h) + x.d + x.c
               FROM unnest($1::uuid[], $2::timestamptz[], $3::int8[], $4::int8[]) AS x(t, h, d, c)
               JOIN tenants ON tenants.id = x.t
             ON CONFLICT (tenant_id, hour) DO UPDATE
                SET requests_data = u.requests_data + EXCLUDED.requests_data,
                    requests_control = u.requests_control + EXCLUDED.requests_control,
                    month_requests = u.month_requests + EXCLUDED.requests_data
                                     + EXCLUDED.requests_control",
            &[&tenants, &hours, &data, &control],
        )
        .await?;
        tx.execute(
            "UPDATE usage_hourly u SET month_requests = u.month_requests + x.d + x.c
               FROM unnest($1::uuid[], $2::timestamptz[], $3::int8[], $4::int8[]) AS x(t, h, d, c)
              WHERE u.tenant_id = x.t AND u.hour > x.h
                AND u.hour < (date_trunc('month', x.h AT TIME ZONE 'UTC') + interval '1 month')
                             AT TIME ZONE 'UTC'",
            &[&tenants, &hours, &data, &control],
        )
        .await?;
        let rows = tx
            .query(
                "SELECT t, usage_month_requests(t, date_trunc('month', now(), 'UTC'), 'infinity')
                   FROM (SELECT DISTINCT t FROM unnest($1::uuid[]) AS x(t)
                          WHERE EXISTS (SELECT 1 FROM tenants WHERE id = x.t)) touched",
                &[&tenants],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(
            rows.iter()
                .map(|r| (TenantId::from(r.get::<_, Uuid>(0)), r.get(1)))
                .collect(),
        ))
    }

    /// Claims the next sample when it is due: `true` for one caller at a
    /// time across replicas. The next is due `every_secs - tick_secs` from
    /// now, so the first tick (every `tick_secs`) at or after it comes at
    /// most `every_secs` after this one: samples are never further apart
    /// than the interval. (Due a whole interval later, a tick that ran a
    /// moment before the claim found the next one not yet due, and samples
    /// came two intervals apart.)
    pub async fn claim_usage_sample(
        &self,
        every_secs: u64,
        tick_secs: u64,
    ) -> Result<bool, CatalogError> {
        let client = self.pool().get().await?;
        let every = every_secs.saturating_sub(tick_secs) as f64;
        let n = client
            .execute(
                "UPDATE usage_sampler SET due_at = now() + make_interval(secs => $1)
                  WHERE due_at <= now()",
                &[&every],
            )
            .await?;
        Ok(n == 1)
    }

    /// The root tenants with a database on `server`, to sample.
    pub async fn metered_tenants(&self, server: Uuid) -> Result<Vec<MeteredTenant>, CatalogError> {
        self.metered("db_server_id = $1", &server).await
    }

    /// The root tenants among `ids`, with what sets their quotas.
    pub async fn metered_tenants_by_id(
        &self,
        ids: &[TenantId],
    ) -> Result<Vec<MeteredTenant>, CatalogError> {
        let ids: Vec<Uuid> = ids.iter().map(TenantId::as_uuid).collect();
        self.metered("id = ANY($1)", &ids).await
    }

    async fn metered(
        &self,
        filter: &str,
        param: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Vec<MeteredTenant>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT id, db_name, tier, settings FROM tenants
                      WHERE {filter} AND parent_id IS NULL AND db_name IS NOT NULL
                        AND purged_at IS NULL AND status IN ('active', 'suspended', 'deleted')"
                ),
                &[param],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| MeteredTenant {
                id: TenantId::from(r.get::<_, Uuid>(0)),
                db_name: r.get(1),
                tier: Tier::parse(r.get(2)).unwrap_or_default(),
                settings: r.get(3),
            })
            .collect())
    }

    /// Records samples: each tenant's storage and backup bytes as the
    /// hour's, and what its counters grew since its last sample.
    pub async fn record_usage_samples(
        &self,
        samples: &[DatabaseSample],
    ) -> Result<Vec<Sampled>, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&USAGE_LOCK])
            .await?;
        let col = |f: fn(&DatabaseSample) -> i64| samples.iter().map(f).collect::<Vec<i64>>();
        let tenants: Vec<Uuid> = samples.iter().map(|s| s.tenant.as_uuid()).collect();
        let (size, read, written) = (
            col(|s| s.storage_bytes),
            col(|s| s.rows_read),
            col(|s| s.rows_written),
        );
        let statement: Vec<f64> = samples.iter().map(|s| s.statement_ms).collect();
        let connection: Vec<f64> = samples.iter().map(|s| s.connection_ms).collect();
        let reset: Vec<Option<DateTime<Utc>>> = samples.iter().map(|s| s.stats_reset).collect();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
            &tenants,
            &size,
            &read,
            &written,
            &statement,
            &connection,
            &reset,
        ];
        let rows = tx
            .query(
                "WITH s AS (
                     SELECT * FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::int8[],
                                          $5::float8[], $6::float8[], $7::timestamptz[])
                         AS s(t, size, rr, rw, sm, cm, reset)
                      WHERE EXISTS (SELECT 1 FROM tenants WHERE id = s.t)),
                 grown AS (
                     SELECT s.t, s.size,
                            CASE WHEN p.tenant_id IS NULL THEN 0
                                 WHEN p.stats_reset IS DISTINCT FROM s.reset OR s.rr < p.rows_read THEN s.rr
                                 ELSE s.rr - p.rows_read END AS rr,
                            CASE WHEN p.tenant_id IS NULL THEN 0
                                 WHEN p.stats_reset IS DISTINCT FROM s.reset OR s.rw < p.rows_written THEN s.rw
                                 ELSE s.rw - p.rows_written END AS rw,
                            CASE WHEN p.tenant_id IS NULL THEN 0
                                 WHEN p.stats_reset IS DISTINCT FROM s.reset OR s.sm < p.statement_ms THEN s.sm
                                 ELSE s.sm - p.statement_ms END AS sm,
                            CASE WHEN p.tenant_id IS NULL THEN 0
                                 WHEN p.stats_reset IS DISTINCT FROM s.reset OR s.cm < p.connection_ms THEN s.cm
                                 ELSE s.cm - p.connection_ms END AS cm,
                            (SELECT coalesce(sum(b.bytes), 0)::int8 FROM backups b
                              WHERE b.tenant_id = s.t AND b.pruned_at IS NULL) AS backups
                       FROM s LEFT JOIN usage_samples p ON p.tenant_id = s.t)
                 INSERT INTO usage_hourly AS u (tenant_id, hour, statement_ms, rows_read,
                        rows_written, connection_ms, storage_bytes, backup_bytes, month_requests)
                 SELECT t, date_trunc('hour', now()), round(sm)::int8, rr, rw, round(cm)::int8, size,
                        backups, usage_month_requests(t, date_trunc('month', now(), 'UTC'),
                                                      date_trunc('hour', now()))
                   FROM grown
                 ON CONFLICT (tenant_id, hour) DO UPDATE
                    SET statement_ms = u.statement_ms + EXCLUDED.statement_ms,
                        rows_read = u.rows_read + EXCLUDED.rows_read,
                        rows_written = u.rows_written + EXCLUDED.rows_written,
                        connection_ms = u.connection_ms + EXCLUDED.connection_ms,
                        storage_bytes = EXCLUDED.storage_bytes,
                        backup_bytes = EXCLUDED.backup_bytes
                 RETURNING tenant_id, storage_bytes",
                &params,
            )
            .await?;
        tx.execute(
            "INSERT INTO usage_samples AS p (tenant_id, sampled_at, stats_reset, rows_read,
                    rows_written, statement_ms, connection_ms)
             SELECT s.t, now(), s.reset, s.rr, s.rw, s.sm, s.cm
               FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::int8[],
                           $5::float8[], $6::float8[], $7::timestamptz[])
                    AS s(t, size, rr, rw, sm, cm, reset)
              WHERE EXISTS (SELECT 1 FROM tenants WHERE id = s.t)
             ON CONFLICT (tenant_id) DO UPDATE SET sampled_at = EXCLUDED.sampled_at,
                    stats_reset = EXCLUDED.stats_reset, rows_read = EXCLUDED.rows_read,
                    rows_written = EXCLUDED.rows_written, statement_ms = EXCLUDED.statement_ms,
                    connection_ms = EXCLUDED.connection_ms",
            &params,
        )
        .await?;
        tx.commit().await?;
        Ok(rows
            .iter()
            .map(|r| Sampled {
                tenant: TenantId::from(r.get::<_, Uuid>(0)),
                storage_bytes: r.get(1),
            })
            .collect())
    }

    /// Rolls hours older than `keep_days` into days, and forgets segment
    /// records past that age: one transaction, so an hour is counted in
    /// exactly one of the two tables.
    pub async fn roll_up_usage(&self, keep_days: u32) -> Result<u64, CatalogError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let days = f64::from(keep_days.max(1));
        let cut: DateTime<Utc> = tx
            .query_one(
                "SELECT date_trunc('day', now() - make_interval(days => $1::float8::int))",
                &[&days],
            )
            .await?
            .get(0);
        let moved = tx
            .execute(
                "WITH old AS (DELETE FROM usage_hourly WHERE hour < $1 RETURNING *)
                 INSERT INTO usage_daily AS d (tenant_id, day, requests_data, requests_control,
                        statement_ms, rows_read, rows_written, connection_ms, storage_bytes, backup_bytes)
                 SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, sum(requests_data),
                        sum(requests_control), sum(statement_ms), sum(rows_read), sum(rows_written),
                        sum(connection_ms), max(storage_bytes), max(backup_bytes)
                   FROM old GROUP BY 1, 2
                 ON CONFLICT (tenant_id, day) DO UPDATE SET
                        requests_data = d.requests_data + EXCLUDED.requests_data,
                        requests_control = d.requests_control + EXCLUDED.requests_control,
                        statement_ms = d.statement_ms + EXCLUDED.statement_ms,
                        rows_read = d.rows_read + EXCLUDED.rows_read,
                        rows_written = d.rows_written + EXCLUDED.rows_written,
                        connection_ms = d.connection_ms + EXCLUDED.connection_ms,
                        storage_bytes = greatest(d.storage_bytes, EXCLUDED.storage_bytes),
                        backup_bytes = greatest(d.backup_bytes, EXCLUDED.backup_bytes)",
                &[&cut],
            )
            .await?;
        tx.execute("DELETE FROM usage_segments WHERE flushed_at < $1", &[&cut])
            .await?;
        tx.commit().await?;
        Ok(moved)
    }
}

/// The first day of `at`'s month (UTC).
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    use chrono::Datelike;
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).expect("the first of a month exists")
}
