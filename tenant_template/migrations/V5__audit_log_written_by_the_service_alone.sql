-- The audit log on the PostgreSQL wire, for writers. The tenant role may
-- INSERT into audit_log: its HTTP sessions record each change there, in the
-- change's own transaction. On the wire the client writes the SQL, so a
-- writer running as that role could write entries the service never made.
-- The gateway's writing sessions log in as roles of their own: the tenant's
-- `<tenant role>_wire`, and the subtenants' `ai_care_sub_<hex>` logins.
-- Keyed on the session user, which no SET, RESET or SET ROLE changes (SET
-- SESSION AUTHORIZATION needs a superuser), they add no entry. They still
-- read the log where their key may.
--
-- The gateway checks each new writing session for this policy and does not
-- serve a client with one whose database lacks it.

CREATE POLICY wire_writes_no_audit ON audit_log AS RESTRICTIVE FOR INSERT
    WITH CHECK (
        NOT pg_catalog.starts_with(session_user::text, 'ai_care_sub_')
        AND pg_catalog.right(session_user::text, 5) <> '_wire'
    );
