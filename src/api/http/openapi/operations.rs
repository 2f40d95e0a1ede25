//! Every operation's id and the errors it can answer, status by status with
//! their codes. The spec is built from this table, and the spec-driven
//! tests hold the server to it: a (status, code) seen that is not declared
//! here fails them. Codes are `ErrorCode` variants, so a code the server
//! cannot answer cannot be declared.

use crate::api::ErrorCode::{self, *};

/// (HTTP status, error code) pairs.
type Codes = &'static [(u16, ErrorCode)];

/// Any route behind a credential.
const AUTH: Codes = &[
    (401, MissingCredentials),
    (401, InvalidToken),
    (401, TokenExpired),
    (403, Forbidden),
    (403, CsrfFailed),
    (429, TooManyDenials),
    (500, InternalError),
    (503, CatalogUnavailable),
];
/// A JSON request body.
const BODY: Codes = &[
    (400, MalformedJson),
    (400, InvalidBody),
    (413, PayloadTooLarge),
    (415, UnsupportedMediaType),
    (422, InvalidBody),
    (422, InvalidField),
];
const QUERY: Codes = &[(400, InvalidQuery)];
/// A UUID path segment other than a tenant's.
const PATH: Codes = &[(400, InvalidPath)];
/// `/v1/tenants/{id}/…`
const TENANT: Codes = &[(400, InvalidTenantId), (404, TenantNotFound)];
/// A tenant operation that runs under the tenant's operation lock.
const LOCKED: Codes = &[
    (409, TenantBusy),
    (409, InvalidState),
    (503, OperationAbandoned),
    (503, DatabaseServerUnavailable),
];
/// Routing a data-plane request to its tenant's database.
const DATA: Codes = &[
    (400, InvalidTenantId),
    (400, TenantRequired),
    (403, CrossTenant),
    (403, TenantSuspended),
    (404, TenantNotFound),
    (404, TenantDeleted),
    (409, TenantNotReady),
    (429, RateLimited),
    (503, DatabaseServerUnavailable),
    (503, ConnectionBudgetExhausted),
    (503, QueryTimeout),
    (503, TenantDatabaseUnavailable),
];
/// A data-plane write: a move or restore pauses them.
const WRITES: Codes = &[(503, TenantWritesPaused)];

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
    op("get", "/readyz", "readyz", &[&[(503, NotReady)]]),
    op("get", "/metrics", "metrics", &[&[(401, MissingCredentials)]]),
    op("get", "/openapi.json", "openapi", &[]),
    // The data plane.
    data("post", "/v1/agents", "createAgent", &[AUTH, BODY, DATA, WRITES, &[(409, MaxAgentsExceeded), (409, FeatureDisabled)]]),
    data("get", "/v1/agents", "listAgents", &[AUTH, QUERY, DATA]),
    data("get", "/v1/agents/{id}", "getAgent", &[AUTH, PATH, DATA, &[(404, AgentNotFound)]]),
    data("patch", "/v1/agents/{id}", "updateAgent", &[AUTH, PATH, BODY, DATA, WRITES, &[(404, AgentNotFound), (409, FeatureDisabled)]]),
    data("delete", "/v1/agents/{id}", "deleteAgent", &[AUTH, PATH, DATA, WRITES, &[(404, AgentNotFound), (409, InUse)]]),
    data("post", "/v1/calls", "createCall", &[AUTH, BODY, DATA, WRITES, &[(409, AgentNotFound), (409, MaxConcurrentCallsExceeded)]]),
    data("get", "/v1/calls", "listCalls", &[AUTH, QUERY, DATA]),
    data("get", "/v1/calls/{id}", "getCall", &[AUTH, PATH, DATA, &[(404, CallNotFound)]]),
    data("patch", "/v1/calls/{id}", "updateCall", &[AUTH, PATH, BODY, DATA, WRITES, &[(404, CallNotFound), (409, MaxConcurrentCallsExceeded)]]),
    data("get", "/v1/analytics/summary", "getAnalyticsSummary", &[AUTH, QUERY, DATA, &[(409, FeatureDisabled)]]),
    data("get", "/v1/audit", "listTenantAudit", &[AUTH, QUERY, DATA]),
    // Tenants.
    op("post", "/v1/tenants", "createTenant", &[AUTH, BODY, &[(400, InvalidIdempotencyKey), (409, SlugTaken), (409, IdempotencyInProgress), (409, IdempotencyKeyReused), (503, NoServerAvailable), (503, DatabaseServerUnavailable)]]),
    op("get", "/v1/tenants", "listTenants", &[AUTH, QUERY]),
    op("get", "/v1/tenants/{id}", "getTenant", &[AUTH, TENANT]),
    op("patch", "/v1/tenants/{id}", "updateTenant", &[AUTH, TENANT, BODY, LOCKED, &[(409, ExceedsParent), (409, NotARootTenant)]]),
    op("delete", "/v1/tenants/{id}", "deleteTenant", &[AUTH, TENANT, QUERY, LOCKED, &[(409, TenantNotDeleted)]]),
    op("post", "/v1/tenants/{id}/subtenants", "createSubtenant", &[AUTH, TENANT, BODY, &[(409, SlugTaken), (409, SubtenantDepth), (409, ParentNotActive), (409, ExceedsParent), (409, TenantBusy)]]),
    op("post", "/v1/tenants/{id}/suspend", "suspendTenant", &[AUTH, TENANT, LOCKED]),
    op("post", "/v1/tenants/{id}/resume", "resumeTenant", &[AUTH, TENANT, LOCKED]),
    op("post", "/v1/tenants/{id}/restore", "restoreTenant", &[AUTH, TENANT, LOCKED, &[(409, RestoreNeedsNew)]]),
    op("post", "/v1/tenants/{id}/migrations", "migrateTenant", &[AUTH, TENANT, BODY, LOCKED, &[(409, NotARootTenant)]]),
    op("get", "/v1/tenants/{id}/migrations", "listTenantMigrations", &[AUTH, TENANT, QUERY]),
    op("post", "/v1/tenants/{id}/move", "moveTenant", &[AUTH, TENANT, BODY, LOCKED, &[(404, ServerNotFound), (409, SameServer), (409, ServerNotActive), (409, NotARootTenant), (503, MoveFailed), (503, NoServerAvailable)]]),
    op("post", "/v1/tenants/{id}/api-keys", "createApiKey", &[AUTH, TENANT, BODY, &[(403, GrantExceedsCaller), (404, SubtenantNotFound), (409, NotARootTenant), (409, ApiKeyLimit)]]),
    op("get", "/v1/tenants/{id}/api-keys", "listApiKeys", &[AUTH, TENANT, QUERY]),
    op("delete", "/v1/tenants/{id}/api-keys/{key}", "revokeApiKey", &[AUTH, TENANT, PATH, &[(404, ApiKeyNotFound)]]),
    op("post", "/v1/tenants/{id}/domains", "addDomain", &[AUTH, TENANT, BODY, &[(409, DomainTaken)]]),
    op("get", "/v1/tenants/{id}/domains", "listDomains", &[AUTH, TENANT]),
    // Fleet migrations.
    op("post", "/v1/migrations/runs", "startMigrationRun", &[AUTH, BODY, QUERY, &[(503, DatabaseServerUnavailable)]]),
    op("get", "/v1/migrations/runs/{run}", "getMigrationRun", &[AUTH, PATH, &[(404, RunNotFound)]]),
    op("post", "/v1/migrations/runs/{run}/resume", "resumeMigrationRun", &[AUTH, PATH, QUERY, &[(404, RunNotFound), (409, RunNotResumable), (503, DatabaseServerUnavailable)]]),
    op("get", "/v1/migrations/versions", "listSchemaVersions", &[AUTH]),
    // Database servers.
    op("get", "/v1/servers", "listServers", &[AUTH]),
    op("post", "/v1/servers", "registerServer", &[AUTH, BODY, &[(409, ServerExists), (409, ServerUnusable), (422, InvalidDsn)]]),
    op("get", "/v1/servers/{id}", "getServer", &[AUTH, PATH, &[(404, ServerNotFound)]]),
    op("patch", "/v1/servers/{id}", "updateServer", &[AUTH, PATH, BODY, &[(404, ServerNotFound)]]),
    op("post", "/v1/servers/{id}/drain", "drainServer", &[AUTH, PATH, &[(404, ServerNotFound)]]),
    // Backups.
    op("post", "/v1/tenants/{id}/backups", "backupTenant", &[AUTH, TENANT, &[(409, NoBackupLocation), (409, InvalidState), (409, NotARootTenant), (503, DatabaseServerUnavailable)]]),
    op("get", "/v1/tenants/{id}/backups", "listBackups", &[AUTH, TENANT]),
    op("get", "/v1/tenants/{id}/backups/{backup}", "getBackup", &[AUTH, TENANT, PATH, &[(404, BackupNotFound)]]),
    op("post", "/v1/tenants/{id}/backups/{backup}/restore", "restoreBackup", &[AUTH, TENANT, PATH, LOCKED, &[(404, BackupNotFound), (409, NoBackupLocation), (409, RestoreNeedsNew), (409, ArchiveTooNew), (503, RestoreFailed)]]),
    op("post", "/v1/tenants/{id}/backups/{backup}/restore-as-new", "restoreBackupAsNew", &[AUTH, TENANT, PATH, BODY, &[(404, BackupNotFound), (409, NoBackupLocation), (409, TenantBusy), (409, ArchiveTooNew), (503, RestoreFailed)]]),
    // Events.
    op("get", "/v1/events", "streamEvents", &[AUTH, QUERY, &[(400, InvalidLastEventId), (503, TooManyStreams)]]),
    op("get", "/v1/webhooks/deliveries", "listWebhookDeliveries", &[AUTH, QUERY]),
    // The fleet at a glance, and the console's session.
    op("get", "/v1/fleet/summary", "getFleetSummary", &[AUTH]),
    op("get", "/v1/fleet/audit", "listFleetAudit", &[AUTH, QUERY]),
    op("post", "/console/session", "signIn", &[AUTH, BODY]),
    op("get", "/console/session", "getSession", &[AUTH]),
    op("delete", "/console/session", "signOut", &[AUTH]),
    // Operations.
    op("get", "/v1/operations", "listOperations", &[AUTH, QUERY]),
    op("get", "/v1/operations/{id}", "getOperation", &[AUTH, PATH, &[(404, OperationNotFound)]]),
    op("post", "/v1/operations/{id}/cancel", "cancelOperation", &[AUTH, PATH, &[(404, OperationNotFound), (409, NotCancellable)]]),
];

impl Operation {
    /// The declared errors, by status, each code once, in order.
    pub fn statuses(&self) -> std::collections::BTreeMap<u16, Vec<ErrorCode>> {
        let mut out = std::collections::BTreeMap::<u16, Vec<ErrorCode>>::new();
        for (status, code) in self.errors.iter().flat_map(|c| c.iter()) {
            let codes = out.entry(*status).or_default();
            if !codes.contains(code) {
                codes.push(*code);
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
