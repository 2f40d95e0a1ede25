-- Tenant API keys, and change notifications that keep every replica's
-- routing cache current.

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    subtenant_id uuid REFERENCES tenants (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The public part of the key, used to find it; the secret part is only hashed.
    prefix       text NOT NULL UNIQUE,
    key_hash     bytea NOT NULL,
    role         text NOT NULL
                 CHECK (role IN ('tenant_admin', 'subtenant_admin', 'agent', 'viewer')),
    permissions  jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);

-- Any change to a tenant or its domains tells every listening replica which
-- tenant to forget; delivered when the changing transaction commits.
CREATE FUNCTION notify_tenant_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('tenant_plane_tenants', COALESCE(NEW.id, OLD.id)::text);
    ELSE
        PERFORM pg_notify('tenant_plane_tenants', COALESCE(NEW.tenant_id, OLD.tenant_id)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_notify AFTER UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_change();
CREATE TRIGGER tenant_domains_notify AFTER INSERT OR UPDATE OR DELETE ON tenant_domains
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_change();
