-- Several database servers: tier pinning, one registration per address, and
-- change notices so every replica sees a server go down or come back.

ALTER TABLE db_servers
    ADD COLUMN pinned_tiers text[] NOT NULL DEFAULT '{}'
        CHECK (pinned_tiers <@ ARRAY['free', 'standard', 'enterprise']::text[]);

CREATE UNIQUE INDEX db_servers_address_idx ON db_servers (host, port);

CREATE FUNCTION notify_server_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenant_plane_tenants', 'server:' || COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER db_servers_notify AFTER UPDATE OR DELETE ON db_servers
    FOR EACH ROW EXECUTE FUNCTION notify_server_change();
