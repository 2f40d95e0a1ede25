-- Every replica's API-key cache forgets a key whose record changes (revoked,
-- or its expiry moved): the change notifies the tenant's channel with an
-- `apikey:` payload, which the router passes on and otherwise ignores.
-- Pruning old revoked rows notifies nothing: those keys are forgotten already.
CREATE FUNCTION notify_api_key_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenant_plane_tenants', 'apikey:' || NEW.tenant_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_notify AFTER UPDATE OF revoked_at, expires_at ON api_keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND (NEW.revoked_at IS NOT NULL
                       OR NEW.expires_at IS DISTINCT FROM OLD.expires_at))
    EXECUTE FUNCTION notify_api_key_change();
