-- Fleet migration runs: one row per run, one item per tenant. The ledger is
-- durable, so a killed run can be resumed without redoing finished work.

CREATE TABLE migration_runs (
    id             uuid PRIMARY KEY,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'stopped')),
    target_version integer NOT NULL,
    concurrency    integer NOT NULL CHECK (concurrency BETWEEN 1 AND 256),
    canary         integer NOT NULL CHECK (canary >= 0),
    max_failures   integer NOT NULL CHECK (max_failures >= 0),
    tier           text,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);

CREATE TABLE migration_items (
    run_id       uuid NOT NULL REFERENCES migration_runs (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    -- Canary items run first, in position order, before any other item.
    canary       boolean NOT NULL,
    position     integer NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    from_version integer,
    to_version   integer,
    applied      integer,
    error        text,
    duration_ms  integer,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (run_id, tenant_id)
);
CREATE INDEX migration_items_run_state_idx ON migration_items (run_id, state, canary DESC, position);
