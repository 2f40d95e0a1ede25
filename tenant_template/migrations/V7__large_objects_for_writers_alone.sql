-- Any role may make a large object: it needs no privilege on a table, and
-- only a read-only transaction stops it, which a read-only login may leave
-- (`BEGIN READ WRITE`). So a read-only key could store data in its
-- tenant's database, and a writer held read-only over a quota could go on
-- growing it. Making one is now for the writers' group alone, as every
-- table write is; what a writer made stays its own to read and change.
-- Only these functions' owner (a superuser) may change who runs them: run
-- by another role, the REVOKE leaves them as they were, and this says so.

REVOKE EXECUTE ON FUNCTION
    pg_catalog.lo_creat(integer),
    pg_catalog.lo_create(oid),
    pg_catalog.lo_from_bytea(oid, bytea)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    pg_catalog.lo_creat(integer),
    pg_catalog.lo_create(oid),
    pg_catalog.lo_from_bytea(oid, bytea)
TO ai_care_tenant_app;

DO $$
BEGIN
    IF pg_catalog.has_function_privilege('ai_care_tenant_reader', 'pg_catalog.lo_create(oid)', 'EXECUTE') THEN
        RAISE WARNING 'read-only logins may still make large objects here: run tenant migration V7 as a superuser';
    END IF;
END $$;
