-- The audit log on the PostgreSQL wire. Over HTTP it is read with the
-- `audit` permission; a read-only key's SQL session (a reader login, whose
-- session user ends in `_reader`) is held to agents and calls, which is
-- what the gateway lets such a key read, so it sees no audit entry. The
-- session user is what no SET, RESET or SET ROLE changes (SET SESSION
-- AUTHORIZATION needs a superuser). The tenant role keeps reading it while
-- a move pauses its writes (it is in ai_care_tenant_reader then, but its
-- name is its own).
--
-- The gateway checks each new read-only session for this policy and does
-- not serve a client with one whose database lacks it.

CREATE POLICY readers_see_no_audit ON audit_log AS RESTRICTIVE FOR SELECT
    USING (pg_catalog.right(session_user::text, 7) <> '_reader');
