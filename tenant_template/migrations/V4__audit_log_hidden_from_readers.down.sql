-- Back to V3: read-only sessions would see the audit log again. The gateway
-- then refuses new ones, since it checks each for the policy before it
-- serves a client with it. The policy goes first: its drop holds the table
-- locked until this commits, and a session the gateway opens meanwhile
-- waits for that before it reads the policies. Then the read-only sessions
-- on this database end (where the migrating role may signal them).

DROP POLICY readers_see_no_audit ON audit_log;

DO $$
BEGIN
    PERFORM pg_catalog.pg_terminate_backend(pid)
       FROM pg_catalog.pg_stat_activity
      WHERE datname = pg_catalog.current_database()
        AND pg_catalog.right(usename::text, 7) = '_reader';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'read-only sessions could not be ended: they keep running until they reconnect';
END $$;
