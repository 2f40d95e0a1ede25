-- A month's requests ride on the hours: each `usage_hourly` row carries its
-- month's total up to and including that hour, so metering adds at most one
-- row per tenant and hour (a separate monthly row was a second one in each
-- month's first hour). A quota reads the month's latest hour, or, when its
-- hours were all rolled up, the month's days.
ALTER TABLE usage_hourly ADD COLUMN month_requests bigint NOT NULL DEFAULT 0;

-- `t`'s requests from `month_start` up to (not including) `before`.
CREATE FUNCTION usage_month_requests(t uuid, month_start timestamptz, before timestamptz)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT month_requests FROM usage_hourly
          WHERE tenant_id = t AND hour >= month_start AND hour < before
          ORDER BY hour DESC LIMIT 1),
        (SELECT sum(requests_data + requests_control) FROM usage_daily
          WHERE tenant_id = t AND day >= (month_start AT TIME ZONE 'UTC')::date
            AND day < (before AT TIME ZONE 'UTC')::date
            AND day < ((month_start AT TIME ZONE 'UTC') + interval '1 month')::date),
        0)::int8
$$;

-- Running totals for the hours already kept: the days rolled up before an
-- hour, and the hours of its month up to it.
UPDATE usage_hourly u SET month_requests = r.total
  FROM (SELECT tenant_id, hour,
               sum(requests_data + requests_control) OVER (
                   PARTITION BY tenant_id, date_trunc('month', hour AT TIME ZONE 'UTC')
                   ORDER BY hour) AS total
          FROM usage_hourly) r
 WHERE u.tenant_id = r.tenant_id AND u.hour = r.hour;
UPDATE usage_hourly u
   SET month_requests = u.month_requests + d.requests
  FROM (SELECT tenant_id, date_trunc('month', day::timestamp) AS month,
               sum(requests_data + requests_control) AS requests
          FROM usage_daily GROUP BY 1, 2) d
 WHERE u.tenant_id = d.tenant_id
   AND date_trunc('month', u.hour AT TIME ZONE 'UTC') = d.month;

DROP TABLE usage_monthly;
