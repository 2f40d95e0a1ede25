-- Drift: each root tenant's real schema against the expected schema of its
-- recorded version, as last checked, and the fleet scans that check them.
-- A record is about the version it names: once the tenant is migrated past
-- it, readers show it as stale (unknown), never as in sync.

CREATE TABLE drift_scans (
    id          uuid PRIMARY KEY,
    state       text NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    -- Tenants the scan covers, and how those it checked stood.
    total       integer NOT NULL DEFAULT 0,
    in_sync     integer NOT NULL DEFAULT 0,
    drifted     integer NOT NULL DEFAULT 0,
    unknown     integer NOT NULL DEFAULT 0,
    error       text
);
-- One scan at a time, across replicas.
CREATE UNIQUE INDEX drift_scans_one_running_idx ON drift_scans ((true)) WHERE state = 'running';
CREATE INDEX drift_scans_started_idx ON drift_scans (started_at DESC);

CREATE TABLE tenant_drift (
    tenant_id            uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    state                text NOT NULL CHECK (state IN ('in_sync', 'drifted', 'unknown')),
    -- The schema version the tenant was checked against (its recorded one).
    version              integer NOT NULL,
    fingerprint          text,
    expected_fingerprint text,
    -- Per object: kind, name, change (added, missing, changed), expected,
    -- actual and the DDL that would put it back, where one can be written.
    diff                 jsonb NOT NULL DEFAULT '[]',
    -- Why the state is unknown (unreachable, busy with another operation).
    reason               text,
    checked_at           timestamptz NOT NULL DEFAULT now(),
    scan_id              uuid REFERENCES drift_scans (id) ON DELETE SET NULL,
    -- The fingerprint a `tenant.drifted` event was last sent for; cleared
    -- when the tenant is found in sync, kept through an unknown check, so
    -- the event fires once per transition into drift, not on every scan.
    notified_fingerprint text
);
CREATE INDEX tenant_drift_state_idx ON tenant_drift (state);
CREATE INDEX tenant_drift_scan_idx ON tenant_drift (scan_id);

-- A fleet run migrates tenants recorded as drifted only when it says so.
ALTER TABLE migration_runs ADD COLUMN allow_drift boolean NOT NULL DEFAULT false;

CREATE FUNCTION tenant_plane_drift_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'drifted' AND NEW.notified_fingerprint IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.notified_fingerprint IS DISTINCT FROM NEW.notified_fingerprint) THEN
        PERFORM tenant_plane_event('tenant.drifted', NEW.tenant_id, NULL, jsonb_build_object(
            'tenant_id', NEW.tenant_id,
            'slug', (SELECT slug FROM tenants WHERE id = NEW.tenant_id),
            'version', NEW.version, 'fingerprint', NEW.fingerprint,
            'expected_fingerprint', NEW.expected_fingerprint,
            'objects', jsonb_array_length(NEW.diff), 'scan_id', NEW.scan_id,
            'checked_at', NEW.checked_at));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tenant_drift_events AFTER INSERT OR UPDATE ON tenant_drift
    FOR EACH ROW EXECUTE FUNCTION tenant_plane_drift_event();
