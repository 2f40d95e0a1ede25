-- Read-only sessions: the gateway's read-only keys log in to a member of
-- ai_care_tenant_reader, and a tenant role whose writes are paused (a move's
-- cutover) is moved into it. It holds SELECT and nothing else.
--
-- A later migration that adds a table grants SELECT on it here too, as it
-- grants DML to ai_care_tenant_app.

GRANT SELECT ON agents, calls, audit_log TO ai_care_tenant_reader;
