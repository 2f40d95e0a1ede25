-- Operations as a resource: every long action (a move, a drain, a fleet
-- run, a backup, a restore, a purge) is an operation an automation can
-- follow, with its progress and a cancel request.

ALTER TABLE operations
    ADD COLUMN progress_done bigint,
    ADD COLUMN progress_total bigint,
    -- Bytes copied or written so far (a backup's archive, a move's copy).
    ADD COLUMN bytes bigint,
    -- A stable code for a failure, beside its message.
    ADD COLUMN error_code text,
    -- Asked to stop; the owner sees it on its next beat, or at once when
    -- the request reached the process that runs it.
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;

-- A backup reads one snapshot while the tenant keeps working: it holds no
-- tenant lock, so the per-tenant lock leaves it out.
DROP INDEX operations_one_per_tenant_idx;
CREATE UNIQUE INDEX operations_one_per_tenant_idx ON operations (tenant_id)
    WHERE state IN ('pending', 'queued', 'running') AND kind <> 'backup';

-- One drain per server and one runner per fleet run, across replicas.
CREATE UNIQUE INDEX operations_one_per_subject_idx ON operations (kind, (params ->> 'subject'))
    WHERE state IN ('pending', 'queued', 'running') AND kind IN ('drain', 'fleet_run');

-- Listing walks operations newest first (ids are UUIDv7, so by time).
CREATE INDEX operations_kind_idx ON operations (kind, id DESC);
CREATE INDEX operations_tenant_id_idx ON operations (tenant_id, id DESC);

-- Backups kept in `backup.location`: one row per archive written.
CREATE TABLE backups (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    operation_id   uuid,
    -- The object's address: file:///… or s3://bucket/key.
    location       text NOT NULL,
    bytes          bigint NOT NULL CHECK (bytes >= 0),
    sha256         text NOT NULL,
    schema_version integer NOT NULL,
    reason         text NOT NULL CHECK (reason IN ('manual', 'scheduled', 'final')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Set once retention removed the object.
    pruned_at      timestamptz
);
CREATE INDEX backups_tenant_idx ON backups (tenant_id, created_at DESC) WHERE pruned_at IS NULL;
