-- Usage per tenant (the root tenant that owns a database) and hour.
-- Requests are counted in memory by each replica and flushed as sums, one
-- row per tenant and hour; storage and the database's own counters (rows
-- read and written, statement time, session time) are sampled from
-- PostgreSQL; backup bytes from `backups`.
CREATE TABLE usage_hourly (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    hour             timestamptz NOT NULL CHECK (date_trunc('hour', hour) = hour),
    requests_data    bigint NOT NULL DEFAULT 0,
    requests_control bigint NOT NULL DEFAULT 0,
    statement_ms     bigint NOT NULL DEFAULT 0,
    rows_read        bigint NOT NULL DEFAULT 0,
    rows_written     bigint NOT NULL DEFAULT 0,
    connection_ms    bigint NOT NULL DEFAULT 0,
    -- The hour's last samples (a gauge, not a sum).
    storage_bytes    bigint,
    backup_bytes     bigint,
    PRIMARY KEY (tenant_id, hour)
);
CREATE INDEX usage_hourly_hour_idx ON usage_hourly (hour);

-- Hours past `usage.hourly_retention_days`, rolled up: sums, and the day's
-- largest storage and backup samples.
CREATE TABLE usage_daily (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    day              date NOT NULL,
    requests_data    bigint NOT NULL DEFAULT 0,
    requests_control bigint NOT NULL DEFAULT 0,
    statement_ms     bigint NOT NULL DEFAULT 0,
    rows_read        bigint NOT NULL DEFAULT 0,
    rows_written     bigint NOT NULL DEFAULT 0,
    connection_ms    bigint NOT NULL DEFAULT 0,
    storage_bytes    bigint,
    backup_bytes     bigint,
    PRIMARY KEY (tenant_id, day)
);

-- The month's requests, kept beside the hours so a quota reads one row.
CREATE TABLE usage_monthly (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    month     date NOT NULL CHECK (date_trunc('month', month) = month),
    requests  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month)
);

-- Journal segments flushed: each replica's segment (writer, seq) is added
-- once, in the transaction that adds its counts, so a flush retried after a
-- crash, or a dead replica's journal flushed by its successor, never counts
-- twice.
CREATE TABLE usage_segments (
    writer     uuid NOT NULL,
    seq        bigint NOT NULL,
    flushed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (writer, seq)
);
CREATE INDEX usage_segments_flushed_idx ON usage_segments (flushed_at);

-- The last sample of each tenant database's cumulative counters: a sample
-- adds what grew since (all of it after a statistics reset).
CREATE TABLE usage_samples (
    tenant_id     uuid PRIMARY KEY REFERENCES tenants (id),
    sampled_at    timestamptz NOT NULL,
    stats_reset   timestamptz,
    rows_read     bigint NOT NULL,
    rows_written  bigint NOT NULL,
    statement_ms  double precision NOT NULL,
    connection_ms double precision NOT NULL
);

-- One sampler at a time across replicas: whoever moves `due_at` samples.
CREATE TABLE usage_sampler (
    id     boolean PRIMARY KEY DEFAULT true CHECK (id),
    due_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO usage_sampler DEFAULT VALUES;

-- Quotas in force: a tenant over a quota has its writes refused until
-- `resets_at` (NULL: until its use drops, as storage does). Every change
-- tells the replicas' routers (the route carries the breach).
CREATE TABLE quota_breaches (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    quota       text NOT NULL CHECK (quota IN ('storage_bytes', 'requests_per_month')),
    used        bigint NOT NULL,
    quota_limit bigint NOT NULL,
    resets_at   timestamptz,
    since       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, quota)
);

CREATE FUNCTION tenant_plane_quota_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenant_plane_tenants', 'quota:' || COALESCE(NEW.tenant_id, OLD.tenant_id)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER quota_breaches_notify AFTER INSERT OR UPDATE OR DELETE ON quota_breaches
    FOR EACH ROW EXECUTE FUNCTION tenant_plane_quota_notify();

-- Warnings at 80 %: one per tenant, quota and period; the insert is the
-- `tenant.quota_warning` event.
CREATE TABLE quota_warnings (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    quota        text NOT NULL,
    period_start timestamptz NOT NULL,
    used         bigint NOT NULL,
    quota_limit  bigint NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, quota, period_start)
);

CREATE FUNCTION tenant_plane_quota_warning_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tenant_plane_event('tenant.quota_warning', NEW.tenant_id, NULL, jsonb_build_object(
        'tenant_id', NEW.tenant_id,
        'slug', (SELECT slug FROM tenants WHERE id = NEW.tenant_id),
        'quota', NEW.quota, 'used', NEW.used, 'limit', NEW.quota_limit,
        'period_start', NEW.period_start));
    RETURN NULL;
END $$;
CREATE TRIGGER quota_warnings_event AFTER INSERT ON quota_warnings
    FOR EACH ROW EXECUTE FUNCTION tenant_plane_quota_warning_event();

-- Each server's measured load, as the last sample found it: placement and
-- the rebalance plan weigh it against the server's capacity.
CREATE TABLE server_load (
    server_id         uuid PRIMARY KEY REFERENCES db_servers (id) ON DELETE CASCADE,
    sampled_at        timestamptz NOT NULL,
    storage_bytes     bigint NOT NULL,
    connections       integer NOT NULL,
    max_connections   integer NOT NULL,
    requests_per_hour bigint NOT NULL
);

-- What a server can hold besides its tenant count: storage (MiB) and
-- requests an hour. NULL: not a limit (only the other measures weigh).
ALTER TABLE db_servers
    ADD COLUMN storage_capacity_mb bigint CHECK (storage_capacity_mb > 0),
    ADD COLUMN requests_per_hour_capacity bigint CHECK (requests_per_hour_capacity > 0);

-- One rebalance at a time, as one drain per server and one runner per run.
DROP INDEX operations_one_per_subject_idx;
CREATE UNIQUE INDEX operations_one_per_subject_idx ON operations (kind, (params ->> 'subject'))
    WHERE state IN ('pending', 'queued', 'running') AND kind IN ('drain', 'fleet_run', 'rebalance');
