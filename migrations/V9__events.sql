-- Events: every tenant and operation state change, and every fleet run's
-- end, recorded by triggers in the same transaction as the change (so no
-- writer, replica or CLI, can change state without its event), numbered
-- in commit order closely enough for `Last-Event-ID`, and announced on the
-- channel `tenant_plane_events` for the SSE stream and the webhooks.

CREATE TABLE events (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    type         text NOT NULL,
    tenant_id    uuid,
    operation_id uuid,
    data         jsonb NOT NULL
);
CREATE INDEX events_at_idx ON events (at);

CREATE FUNCTION tenant_plane_event(kind text, tenant uuid, op uuid, payload jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO events (type, tenant_id, operation_id, data)
    VALUES (kind, tenant, op, payload) RETURNING id INTO new_id;
    PERFORM pg_notify('tenant_plane_events', new_id::text);
END $$;

CREATE FUNCTION tenant_plane_tenant_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    payload jsonb := jsonb_build_object(
        'tenant_id', NEW.id, 'slug', NEW.slug, 'parent_id', NEW.parent_id,
        'tier', NEW.tier, 'status', NEW.status);
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status = 'active' THEN kind := 'tenant.created'; END IF;
    ELSIF NEW.purged_at IS NOT NULL AND OLD.purged_at IS NULL THEN
        kind := 'tenant.purged';
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        kind := CASE
            WHEN OLD.status = 'provisioning' AND NEW.status = 'active' THEN 'tenant.created'
            WHEN NEW.status = 'suspended' THEN 'tenant.suspended'
            WHEN NEW.status = 'deleted' THEN 'tenant.deleted'
            WHEN OLD.status = 'suspended' AND NEW.status = 'active' THEN 'tenant.resumed'
            WHEN OLD.status = 'deleted' AND NEW.status = 'active' THEN 'tenant.restored'
            WHEN NEW.status = 'failed' THEN 'tenant.failed'
            ELSE 'tenant.' || NEW.status
        END;
    ELSIF NEW.db_server_id IS DISTINCT FROM OLD.db_server_id THEN
        kind := 'tenant.moved';
        payload := payload || jsonb_build_object('server_id', NEW.db_server_id);
    END IF;
    IF kind IS NOT NULL THEN
        PERFORM tenant_plane_event(kind, NEW.id, NULL, payload);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tenants_events AFTER INSERT OR UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenant_plane_tenant_event();

CREATE FUNCTION tenant_plane_operation_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := CASE WHEN NEW.state = 'running' THEN 'operation.started'
                     WHEN NEW.state = 'succeeded' THEN 'operation.succeeded' END;
    ELSIF NEW.state IS DISTINCT FROM OLD.state AND NEW.state IN ('succeeded', 'failed', 'cancelled') THEN
        kind := 'operation.' || NEW.state;
    ELSIF NEW.generation IS DISTINCT FROM OLD.generation THEN
        kind := 'operation.taken_over';
    END IF;
    IF kind IS NOT NULL THEN
        PERFORM tenant_plane_event(kind, NEW.tenant_id, NEW.id, jsonb_build_object(
            'operation_id', NEW.id, 'kind', NEW.kind, 'tenant_id', NEW.tenant_id,
            'state', NEW.state, 'error', NEW.error, 'owner', NEW.owner));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER operations_events AFTER INSERT OR UPDATE ON operations
    FOR EACH ROW EXECUTE FUNCTION tenant_plane_operation_event();

CREATE FUNCTION tenant_plane_run_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state AND NEW.state IN ('succeeded', 'failed', 'stopped') THEN
        PERFORM tenant_plane_event('migration_run.finished', NULL, NULL, jsonb_build_object(
            'run_id', NEW.id, 'state', NEW.state, 'target_version', NEW.target_version,
            'error', NEW.error));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER migration_runs_events AFTER UPDATE ON migration_runs
    FOR EACH ROW EXECUTE FUNCTION tenant_plane_run_event();

-- Outbound webhooks: one delivery per event and endpoint, retried with
-- backoff until delivered or out of attempts; the log is readable over
-- the API.
CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    url             text NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (event_id, url)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
