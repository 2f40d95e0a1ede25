-- Reverts of fleet migration runs: one row per revert, one item per item of
-- the run. Planned once, at creation: the tenants the run moved forward are
-- pending; the rest are listed, skipped, with the reason. The ledger is
-- durable, so a revert that is killed goes on from where it stood.

CREATE TABLE migration_reverts (
    id               uuid PRIMARY KEY,
    -- The run it takes back; NULL for one tenant's revert on request.
    run_id           uuid REFERENCES migration_runs (id) ON DELETE CASCADE,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'stopped')),
    accept_data_loss boolean NOT NULL,
    concurrency      integer NOT NULL CHECK (concurrency BETWEEN 1 AND 256),
    -- Counts as the revert ended (while it runs, they come from the items).
    succeeded        integer NOT NULL DEFAULT 0,
    failed           integer NOT NULL DEFAULT 0,
    skipped          integer NOT NULL DEFAULT 0,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
-- One unfinished revert per run: a second request joins it.
CREATE UNIQUE INDEX migration_reverts_one_open_idx ON migration_reverts (run_id)
    WHERE state IN ('pending', 'running');

CREATE TABLE migration_revert_items (
    revert_id    uuid NOT NULL REFERENCES migration_reverts (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    position     integer NOT NULL,
    state        text NOT NULL
                 CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    -- Reverted from the run's target back to the version it found.
    from_version integer,
    to_version   integer,
    -- Why it was skipped, or why it failed.
    reason       text,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (revert_id, tenant_id)
);
CREATE INDEX migration_revert_items_state_idx ON migration_revert_items (revert_id, state, position);
CREATE INDEX migration_revert_items_tenant_idx ON migration_revert_items (tenant_id);
