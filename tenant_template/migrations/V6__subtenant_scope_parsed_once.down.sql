-- Back to V3's function, whose body is parsed in each session. The gateway
-- then refuses new subtenant sessions, since it checks each for a body
-- parsed once before it serves a client with it. The lock comes first: a
-- session the gateway opens while this runs waits on it before that check,
-- so it reads the function as committed. Then the subtenant sessions on
-- this database end (where the migrating role may signal them).

LOCK TABLE public.audit_log IN ACCESS EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION public.app_subtenant_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE
        WHEN pg_catalog.starts_with(session_user::text, 'ai_care_sub_')
            THEN pg_catalog.substr(session_user::text, 13, 32)::uuid
        ELSE NULLIF(pg_catalog.current_setting('app.subtenant_id', true), '')::uuid
    END
$$;

DO $$
BEGIN
    PERFORM pg_catalog.pg_terminate_backend(pid)
       FROM pg_catalog.pg_stat_activity
      WHERE datname = pg_catalog.current_database()
        AND pg_catalog.starts_with(usename::text, 'ai_care_sub_');
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'subtenant login sessions could not be ended: they keep running until they reconnect';
END $$;
