-- Fenced operations and installation identity.
--
-- Every claim of an operation takes a new generation, and every later write
-- of the operation compares (id, generation, state = 'running'), so a
-- replica that lost its claim can change nothing. The owner is the process
-- that runs it: `owner_key` is the key of a session-level advisory lock
-- that process holds on the catalog while it lives, so a peer can tell a
-- dead owner (its lock is free) from a slow one at once. `step` records how
-- far a multi-step operation got, for whoever finishes it.

ALTER TABLE operations
    ADD COLUMN generation bigint NOT NULL DEFAULT 1,
    ADD COLUMN owner uuid,
    ADD COLUMN owner_key integer,
    ADD COLUMN step text;

-- 'queued' and 'cancelled' join the states long operations can be in.
ALTER TABLE operations DROP CONSTRAINT operations_state_check;
ALTER TABLE operations ADD CONSTRAINT operations_state_check
    CHECK (state IN ('pending', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'rolled_back'))
    NOT VALID;
ALTER TABLE operations VALIDATE CONSTRAINT operations_state_check;

-- One row: the id of this installation. Every database and role it makes
-- on a server carries it (a comment), so that two installations sharing a
-- server can tell their objects apart and never repair each other's.
CREATE TABLE installation (
    id         uuid PRIMARY KEY,
    singleton  boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation (id) VALUES (gen_random_uuid());

-- The per-tenant lock covers queued operations too.
DROP INDEX operations_one_per_tenant_idx;
CREATE UNIQUE INDEX operations_one_per_tenant_idx ON operations (tenant_id)
    WHERE state IN ('pending', 'queued', 'running');
DROP INDEX operations_unfinished_idx;
CREATE INDEX operations_unfinished_idx ON operations (created_at)
    WHERE state IN ('pending', 'queued', 'running');
