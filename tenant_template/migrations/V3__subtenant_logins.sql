-- Subtenant sessions on the PostgreSQL wire. There the client writes the
-- SQL, so `app.subtenant_id` (a setting any session may change) is no
-- boundary. A subtenant's gateway sessions log in as its own role,
-- `ai_care_sub_<32 hex of its id>` (or with `_reader`), a member of the
-- tenant role. For such a session user the subtenant comes from the name,
-- which no SET, RESET or SET ROLE changes (SET SESSION AUTHORIZATION needs a
-- superuser); every other session reads the setting, as before.
--
-- Still one SQL expression, so the planner inlines it into the policies.
-- Functions are schema-qualified: a session's temporary schema or search_path
-- must not reach them.

CREATE OR REPLACE FUNCTION public.app_subtenant_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE
        WHEN pg_catalog.starts_with(session_user::text, 'ai_care_sub_')
            THEN pg_catalog.substr(session_user::text, 13, 32)::uuid
        ELSE NULLIF(pg_catalog.current_setting('app.subtenant_id', true), '')::uuid
    END
$$;
