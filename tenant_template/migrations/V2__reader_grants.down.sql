REVOKE SELECT ON agents, calls, audit_log FROM ai_care_tenant_reader;
