-- A subtenant's gateway sessions may make types of their own in their
-- temporary schema, which PostgreSQL searches for type names before
-- pg_catalog. V3's function body is kept as text and parsed again in every
-- session that runs it, under that session's search path: there `text`
-- could name the session's own domain (one that cuts the session user's
-- name short), and the policies would read the subtenant from the setting
-- the client changes. A standard SQL body is parsed once, here, and kept
-- resolved; its types are qualified as well. The planner still inlines it
-- into the policies.

CREATE OR REPLACE FUNCTION public.app_subtenant_id() RETURNS pg_catalog.uuid
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE
        WHEN pg_catalog.starts_with(SESSION_USER::pg_catalog.text, 'ai_care_sub_')
            THEN pg_catalog.substr(SESSION_USER::pg_catalog.text, 13, 32)::pg_catalog.uuid
        ELSE NULLIF(pg_catalog.current_setting('app.subtenant_id', true), '')::pg_catalog.uuid
    END;
END;
