//! Every operation's id and the errors it can answer, status by status with
//! their codes. The spec is built from this table, and the spec-driven
//! tests hold the server to it: a (status, code) seen that is not declared
//! here fails them.

/// (HTTP status, error code) pairs.
type Codes = &'static [(u16, &'static str)];

/// Any route behind a credential.
const AUTH: Codes = &[
    (401, "missing_credentials"),
    (401, "invalid_token"),
    (401, "token_expired"),
    (403, "forbidden"),
    (403, "csrf_failed"),
    (429, "too_many_denials"),
    (500, "internal_error"),
    (503, "catalog_unavailable"),
];
/// A JSON request body.
const BODY: Codes = &[
    (400, "malformed_json"),
    (400, "invalid_body"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (422, "invalid_body"),
    (422, "invalid_field"),
];
const QUERY: Codes = &[(400, "invalid_query")];
/// A UUID path segment other than a tenant's.
const PATH: Codes = &[(400, "invalid_path")];
/// `/v1/tenants/{id}/…`
const TENANT: Codes = &[(400, "invalid_tenant_id"), (404, "tenant_not_found")];
/// A tenant operation that runs under the tenant's operation lock.
const LOCKED: Codes = &[
    (409, "tenant_busy"),
    (409, "invalid_state"),
    (503, "operation_abandoned"),
    (503, "database_server_unavailable"),
];
/// Routing a data-plane request to its tenant's database.
const DATA: Codes = &[
    (400, "invalid_tenant_id"),
    (400, "tenant_required"),
    (403, "cross_tenant"),
    (403, "tenant_suspended"),
    (404, "tenant_not_found"),
    (404, "tenant_deleted"),
    (409, "tenant_not_ready"),
    (429, "rate_limited"),
    (503, "database_server_unavailable"),
    (503, "connection_budget_exhausted"),
    (503, "query_timeout"),
    (503, "tenant_database_unavailable"),
];
/// A data-plane write: a move or restore pauses them.
const WRITES: Codes = &[(503, "tenant_writes_paused")];

pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    /// Whether the data plane serves it (it takes the tenant headers).
    pub data_plane: bool,
    pub errors: &'static [Codes],
}

const fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    errors: &'static [Codes],
) -> Operation {
    Operation {
        method,
        path,
        id,
        data_plane: false,
        errors,
    }
}

const fn data(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    errors: &'static [Codes],
) -> Operation {
    Operation {
        method,
        path,
        id,
        data_plane: true,
        errors,
    }
}

#[rustfmt::skip]
pub const OPERATIONS: &[Operation] = &[
    op("get", "/healthz", "healthz", &[]),
    op("get", "/readyz", "readyz", &[&[(503, "not_ready")]]),
    op("get", "/metrics", "metrics", &[&[(401, "missing_credentials")]]),
    op("get", "/openapi.json", "openapi", &[]),
    // The data plane.
    data("post", "/v1/agents", "createAgent", &[AUTH, BODY, DATA, WRITES, &[(409, "max_agents_exceeded"), (409, "feature_disabled")]]),
    data("get", "/v1/agents", "listAgents", &[AUTH, QUERY, DATA]),
    data("get", "/v1/agents/{id}", "getAgent", &[AUTH, PATH, DATA, &[(404, "agent_not_found")]]),
    data("patch", "/v1/agents/{id}", "updateAgent", &[AUTH, PATH, BODY, DATA, WRITES, &[(404, "agent_not_found"), (409, "feature_disabled")]]),
    data("delete", "/v1/agents/{id}", "deleteAgent", &[AUTH, PATH, DATA, WRITES, &[(404, "agent_not_found"), (409, "in_use")]]),
    data("post", "/v1/calls", "createCall", &[AUTH, BODY, DATA, WRITES, &[(409, "agent_not_found"), (409, "max_concurrent_calls_exceeded")]]),
    data("get", "/v1/calls", "listCalls", &[AUTH, QUERY, DATA]),
    data("get", "/v1/calls/{id}", "getCall", &[AUTH, PATH, DATA, &[(404, "call_not_found")]]),
    data("patch", "/v1/calls/{id}", "updateCall", &[AUTH, PATH, BODY, DATA, WRITES, &[(404, "call_not_found"), (409, "max_concurrent_calls_exceeded")]]),
    data("get", "/v1/analytics/summary", "getAnalyticsSummary", &[AUTH, QUERY, DATA, &[(409, "feature_disabled")]]),
    data("get", "/v1/audit", "listTenantAudit", &[AUTH, QUERY, DATA]),
    // Tenants.
    op("post", "/v1/tenants", "createTenant", &[AUTH, BODY, &[(400, "invalid_idempotency_key"), (409, "slug_taken"), (409, "idempotency_in_progress"), (409, "idempotency_key_reused"), (503, "no_server_available"), (503, "database_server_unavailable")]]),
    op("get", "/v1/tenants", "listTenants", &[AUTH, QUERY]),
    op("get", "/v1/tenants/{id}", "getTenant", &[AUTH, TENANT]),
    op("patch", "/v1/tenants/{id}", "updateTenant", &[AUTH, TENANT, BODY, LOCKED, &[(409, "exceeds_parent"), (409, "not_a_root_tenant")]]),
    op("delete", "/v1/tenants/{id}", "deleteTenant", &[AUTH, TENANT, QUERY, LOCKED, &[(409, "tenant_not_deleted")]]),
    op("post", "/v1/tenants/{id}/subtenants", "createSubtenant", &[AUTH, TENANT, BODY, &[(409, "slug_taken"), (409, "subtenant_depth"), (409, "parent_not_active"), (409, "exceeds_parent"), (409, "tenant_busy")]]),
    op("post", "/v1/tenants/{id}/suspend", "suspendTenant", &[AUTH, TENANT, LOCKED]),
    op("post", "/v1/tenants/{id}/resume", "resumeTenant", &[AUTH, TENANT, LOCKED]),
    op("post", "/v1/tenants/{id}/restore", "restoreTenant", &[AUTH, TENANT, LOCKED, &[(409, "restore_needs_new")]]),
    op("post", "/v1/tenants/{id}/migrations", "migrateTenant", &[AUTH, TENANT, BODY, LOCKED, &[(409, "not_a_root_tenant")]]),
    op("get", "/v1/tenants/{id}/migrations", "listTenantMigrations", &[AUTH, TENANT, QUERY]),
    op("post", "/v1/tenants/{id}/move", "moveTenant", &[AUTH, TENANT, BODY, LOCKED, &[(404, "server_not_found"), (409, "same_server"), (409, "server_not_active"), (409, "not_a_root_tenant"), (503, "move_failed"), (503, "no_server_available")]]),
    op("post", "/v1/tenants/{id}/api-keys", "createApiKey", &[AUTH, TENANT, BODY, &[(403, "grant_exceeds_caller"), (404, "subtenant_not_found"), (409, "not_a_root_tenant"), (409, "api_key_limit")]]),
    op("get", "/v1/tenants/{id}/api-keys", "listApiKeys", &[AUTH, TENANT, QUERY]),
    op("delete", "/v1/tenants/{id}/api-keys/{key}", "revokeApiKey", &[AUTH, TENANT, PATH, &[(404, "api_key_not_found")]]),
    op("post", "/v1/tenants/{id}/domains", "addDomain", &[AUTH, TENANT, BODY, &[(409, "domain_taken")]]),
    op("get", "/v1/tenants/{id}/domains", "listDomains", &[AUTH, TENANT]),
    // Fleet migrations.
    op("post", "/v1/migrations/runs", "startMigrationRun", &[AUTH, BODY, QUERY, &[(503, "database_server_unavailable")]]),
    op("get", "/v1/migrations/runs/{run}", "getMigrationRun", &[AUTH, PATH, &[(404, "run_not_found")]]),
    op("post", "/v1/migrations/runs/{run}/resume", "resumeMigrationRun", &[AUTH, PATH, QUERY, &[(404, "run_not_found"), (409, "run_not_resumable"), (503, "database_server_unavailable")]]),
    op("get", "/v1/migrations/versions", "listSchemaVersions", &[AUTH]),
    // Database servers.
    op("get", "/v1/servers", "listServers", &[AUTH]),
    op("post", "/v1/servers", "registerServer", &[AUTH, BODY, &[(409, "server_exists"), (409, "server_unusable")]]),
    op("get", "/v1/servers/{id}", "getServer", &[AUTH, PATH, &[(404, "server_not_found")]]),
    op("patch", "/v1/servers/{id}", "updateServer", &[AUTH, PATH, BODY, &[(404, "server_not_found")]]),
    op("post", "/v1/servers/{id}/drain", "drainServer", &[AUTH, PATH, &[(404, "server_not_found")]]),
    // Backups.
    op("post", "/v1/tenants/{id}/backups", "backupTenant", &[AUTH, TENANT, &[(409, "no_backup_location"), (409, "invalid_state"), (409, "not_a_root_tenant"), (503, "database_server_unavailable")]]),
    op("get", "/v1/tenants/{id}/backups", "listBackups", &[AUTH, TENANT]),
    op("get", "/v1/tenants/{id}/backups/{backup}", "getBackup", &[AUTH, TENANT, PATH, &[(404, "backup_not_found")]]),
    op("post", "/v1/tenants/{id}/backups/{backup}/restore", "restoreBackup", &[AUTH, TENANT, PATH, LOCKED, &[(404, "backup_not_found"), (409, "no_backup_location"), (409, "restore_needs_new"), (409, "archive_too_new"), (503, "restore_failed")]]),
    op("post", "/v1/tenants/{id}/backups/{backup}/restore-as-new", "restoreBackupAsNew", &[AUTH, TENANT, PATH, BODY, &[(404, "backup_not_found"), (409, "no_backup_location"), (409, "tenant_busy"), (409, "archive_too_new"), (503, "restore_failed")]]),
    // Events.
    op("get", "/v1/events", "streamEvents", &[AUTH, QUERY, &[(400, "invalid_last_event_id"), (503, "too_many_streams")]]),
    op("get", "/v1/webhooks/deliveries", "listWebhookDeliveries", &[AUTH, QUERY]),
    // The fleet at a glance, and the console's session.
    op("get", "/v1/fleet/summary", "getFleetSummary", &[AUTH]),
    op("get", "/v1/fleet/audit", "listFleetAudit", &[AUTH, QUERY]),
    op("post", "/console/session", "signIn", &[AUTH, BODY]),
    op("get", "/console/session", "getSession", &[AUTH]),
    op("delete", "/console/session", "signOut", &[AUTH]),
    // Operations.
    op("get", "/v1/operations", "listOperations", &[AUTH, QUERY]),
    op("get", "/v1/operations/{id}", "getOperation", &[AUTH, PATH, &[(404, "operation_not_found")]]),
    op("post", "/v1/operations/{id}/cancel", "cancelOperation", &[AUTH, PATH, &[(404, "operation_not_found"), (409, "not_cancellable")]]),
];

impl Operation {
    /// The declared errors, by status, each code once, in order.
    pub fn statuses(&self) -> std::collections::BTreeMap<u16, Vec<&'static str>> {
        let mut out = std::collections::BTreeMap::<u16, Vec<&'static str>>::new();
        for (status, code) in self.errors.iter().flat_map(|c| c.iter()) {
            let codes = out.entry(*status).or_default();
            if !codes.contains(code) {
                codes.push(code);
            }
        }
        out
    }
}

pub fn find(method: &str, path: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|o| o.method == method && o.path == path)
}
