-- Back to V1's scope function. A subtenant login's sessions would then be
-- held by `app.subtenant_id` alone, which they may change: end the ones on
-- this database (where the migrating role may signal them), and the
-- gateway refuses to start new ones, since it checks each new session's
-- scope (`SELECT app_subtenant_id()`) before it serves a client with it.
-- The lock comes first: a session the gateway opens while this runs waits
-- on it before that check, so it reads the function as committed.

LOCK TABLE public.audit_log IN ACCESS EXCLUSIVE MODE;

DO $$
BEGIN
    PERFORM pg_catalog.pg_terminate_backend(pid)
       FROM pg_catalog.pg_stat_activity
      WHERE datname = pg_catalog.current_database()
        AND pg_catalog.starts_with(usename::text, 'ai_care_sub_');
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'subtenant login sessions could not be ended: they keep running until they reconnect';
END $$;

CREATE OR REPLACE FUNCTION public.app_subtenant_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.subtenant_id', true), '')::uuid $$;
