-- The schema of every tenant database. Applied to ai_care_tenant_template on
-- each server, so new tenants are cloned already migrated.
--
-- Tables belong to the migrating administrator. Tenant login roles get DML
-- through membership in ai_care_tenant_app, and row-level security keeps a
-- subtenant's session on its own rows: when `app.subtenant_id` is set (SET
-- LOCAL in each data-plane transaction), only rows of that subtenant are
-- visible or writable; when it is unset, the session is tenant-wide.

CREATE FUNCTION app_subtenant_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.subtenant_id', true), '')::uuid $$;

CREATE TABLE agents (
    id            uuid PRIMARY KEY,
    subtenant_id  uuid,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    type          text NOT NULL CHECK (type IN ('voice', 'chat')),
    configuration jsonb NOT NULL DEFAULT '{}'::jsonb,
    owner         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_subtenant_idx ON agents (subtenant_id, created_at);
CREATE INDEX agents_owner_idx ON agents (owner);

CREATE TABLE calls (
    id             uuid PRIMARY KEY,
    subtenant_id   uuid,
    agent_id       uuid NOT NULL REFERENCES agents (id),
    customer_phone text CHECK (length(customer_phone) <= 32),
    status         text NOT NULL
                   CHECK (status IN ('queued', 'in_progress', 'completed', 'failed', 'abandoned')),
    duration       integer CHECK (duration >= 0),
    owner          text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_subtenant_created_idx ON calls (subtenant_id, created_at);
CREATE INDEX calls_agent_created_idx ON calls (agent_id, created_at);
CREATE INDEX calls_created_idx ON calls (created_at);
CREATE INDEX calls_in_progress_idx ON calls (subtenant_id) WHERE status = 'in_progress';
CREATE INDEX calls_owner_idx ON calls (owner);

-- The seed's AuditLog: append-only for the tenant role.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    subtenant_id uuid,
    user_id      text NOT NULL,
    action       text NOT NULL,
    resource     text NOT NULL,
    "timestamp"  timestamptz NOT NULL DEFAULT now(),
    ip_address   text,
    user_agent   text,
    result       text NOT NULL CHECK (result IN ('success', 'failure')),
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_subtenant_ts_idx ON audit_log (subtenant_id, "timestamp");

ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY subtenant_scope ON agents
    USING (app_subtenant_id() IS NULL OR subtenant_id = app_subtenant_id())
    WITH CHECK (app_subtenant_id() IS NULL OR subtenant_id = app_subtenant_id());
CREATE POLICY subtenant_scope ON calls
    USING (app_subtenant_id() IS NULL OR subtenant_id = app_subtenant_id())
    WITH CHECK (app_subtenant_id() IS NULL OR subtenant_id = app_subtenant_id());
CREATE POLICY subtenant_scope ON audit_log
    USING (app_subtenant_id() IS NULL OR subtenant_id = app_subtenant_id())
    WITH CHECK (app_subtenant_id() IS NULL OR subtenant_id = app_subtenant_id());

GRANT SELECT, INSERT, UPDATE, DELETE ON agents, calls TO ai_care_tenant_app;
GRANT SELECT, INSERT ON audit_log TO ai_care_tenant_app;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO ai_care_tenant_app;
