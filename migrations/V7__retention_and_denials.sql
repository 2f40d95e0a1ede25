-- Retention, API key expiry, and aggregated denials.

-- An idempotency key is kept a day after its request finished.
ALTER TABLE idempotency_keys ADD COLUMN completed_at timestamptz;
UPDATE idempotency_keys SET completed_at = created_at WHERE response_status IS NOT NULL;
CREATE INDEX idempotency_keys_completed_idx ON idempotency_keys (completed_at)
    WHERE completed_at IS NOT NULL;

-- Pruning walks these by age.
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX operations_finished_idx ON operations (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX migration_runs_finished_idx ON migration_runs (finished_at) WHERE finished_at IS NOT NULL;

-- A key may expire; the principal that minted it is `created_by`.
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;

-- Refused requests (401, 403), counted per minute, source, route and
-- reason rather than one row each, so a flood of bad credentials costs a
-- few rows a minute.
-- `tenant_id` is the nil UUID and `user_id` empty when the caller was not
-- authenticated.
CREATE TABLE denials (
    minute    timestamptz NOT NULL,
    source    text NOT NULL,
    route     text NOT NULL,
    reason    text NOT NULL,
    tenant_id uuid NOT NULL,
    user_id   text NOT NULL,
    count     bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (minute, source, route, reason, tenant_id, user_id)
);
CREATE INDEX denials_tenant_idx ON denials (tenant_id, minute);
