//! Every route of the service, each declared once: the handler's
//! `#[utoipa::path]` states its method and path (with its parameters, body
//! and success responses), and one line of `ROUTES` names the handler, its
//! operation id and the error sets it can answer. From that line come the
//! actix route, the spec's operation (`http::openapi`), the 405's `Allow`
//! and the route label that metrics, traces and denials use. Adding a route
//! is its handler with its attribute, and one line here
//! (docs/ADDING_A_ROUTE.md).
//!
//! Rules:
//! - a path the spec lists is served, and a method it does not list on it
//!   gets 405 with `Allow` (the resource's default service);
//! - the data plane's routes come first: actix tries resources in order;
//! - the console's files come after its session route, whose path their
//!   pattern would also match, and are not in the spec;
//! - `/openapi.json` documents exactly these routes (a test compares both
//!   ways), each operation with a unique id and every error status it can
//!   answer with its codes; what the spec refuses the server refuses, and a
//!   request it allows is refused only for a reason of state (the contract
//!   test holds both directions on generated requests).

#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use utoipa::openapi::path::HttpMethod;
use utoipa::ToSchema;

use super::console;
use super::control::{
    api_keys, backups, domains, drift, events, health, identity_providers, metrics, migration_lint,
    migration_reverts, migrations, operations, overview, rebalance, restore_time, servers, tenants,
    usage, wal_archives,
};
use super::data::{self, SUBTENANT_HEADER, TENANT_HEADER};
use super::http::extract::{self, Allow};
use super::http::middleware::RouteLabel;
use super::http::openapi::{self, Component, Endpoint};

/// One route: its operation as the spec declares it, and its handler.
struct Route {
    endpoint: Endpoint,
    to: fn(actix_web::Route) -> actix_web::Route,
}

impl Route {
    /// The credential comes in the body (signing in): no `bearer` security.
    const fn credential_in_body(self) -> Self {
        Self {
            endpoint: self.endpoint.credential_in_body(),
            ..self
        }
    }
}

/// `route!(module::handler, "operationId", [ERROR, SETS, &[(status, Code)]])`:
/// the route of `handler`, with the method and path of its attribute.
macro_rules! route {
    (@at [$($module:ident)*] $handler:ident, $id:literal, [$($set:expr),* $(,)?]) => {
        pastey::paste! {
            Route {
                endpoint: Endpoint::of::<$($module::)* [<__path_ $handler>]>($id, &[$($set),*]),
                to: |route| route.to($($module::)* $handler),
            }
        }
    };
    (@at [$($module:ident)*] $next:ident :: $($rest:tt)*) => {
        route!(@at [$($module)* $next] $($rest)*)
    };
    ($($line:tt)*) => {
        route!(@at [] $($line)*)
    };
}

#[rustfmt::skip]
static ROUTES: &[Route] = {
    use crate::api::http::ErrorCode::*;
    use openapi::{AUTH, BODY, DATA, LOCKED, PATH, QUERY, TENANT, WRITES};
    &[
        // The data plane first: actix tries resources in order, and its
        // requests are the hot path.
        route!(data::agents::create, "createAgent", [AUTH, BODY, DATA, WRITES, &[(409, MaxAgentsExceeded), (409, FeatureDisabled)]]),
        route!(data::agents::list, "listAgents", [AUTH, QUERY, DATA]),
        route!(data::agents::show, "getAgent", [AUTH, PATH, DATA, &[(404, AgentNotFound)]]),
        route!(data::agents::update, "updateAgent", [AUTH, PATH, BODY, DATA, WRITES, &[(404, AgentNotFound), (409, FeatureDisabled)]]),
        route!(data::agents::delete, "deleteAgent", [AUTH, PATH, DATA, WRITES, &[(404, AgentNotFound), (409, InUse)]]),
        route!(data::calls::create, "createCall", [AUTH, BODY, DATA, WRITES, &[(409, AgentNotFound), (409, MaxConcurrentCallsExceeded)]]),
        route!(data::calls::list, "listCalls", [AUTH, QUERY, DATA]),
        route!(data::calls::show, "getCall", [AUTH, PATH, DATA, &[(404, CallNotFound)]]),
        route!(data::calls::update, "updateCall", [AUTH, PATH, BODY, DATA, WRITES, &[(404, CallNotFound), (409, MaxConcurrentCallsExceeded)]]),
        route!(data::insights::summary, "getAnalyticsSummary", [AUTH, QUERY, DATA, &[(409, FeatureDisabled)]]),
        route!(data::insights::audit, "listTenantAudit", [AUTH, QUERY, DATA]),
        // The process.
        route!(health::healthz, "healthz", []),
        route!(health::readyz, "readyz", [&[(503, NotReady)]]),
        route!(metrics::render, "metrics", [&[(401, MissingCredentials)]]),
        route!(openapi_json, "openapi", []),
        // Tenants.
        route!(tenants::create::create, "createTenant", [AUTH, BODY, &[(400, InvalidIdempotencyKey), (409, SlugTaken), (409, IdempotencyInProgress), (409, IdempotencyKeyReused), (503, NoServerAvailable), (503, DatabaseServerUnavailable)]]),
        route!(tenants::read::list, "listTenants", [AUTH, QUERY]),
        route!(tenants::read::show, "getTenant", [AUTH, TENANT]),
        route!(tenants::update::update, "updateTenant", [AUTH, TENANT, BODY, LOCKED, &[(409, ExceedsParent), (409, NotARootTenant)]]),
        route!(tenants::lifecycle::delete, "deleteTenant", [AUTH, TENANT, QUERY, LOCKED, &[(409, TenantNotDeleted)]]),
        route!(tenants::create::create_subtenant, "createSubtenant", [AUTH, TENANT, BODY, &[(400, InvalidIdempotencyKey), (409, SlugTaken), (409, SubtenantDepth), (409, ParentNotActive), (409, ExceedsParent), (409, TenantBusy), (409, IdempotencyInProgress), (409, IdempotencyKeyReused)]]),
        route!(tenants::lifecycle::suspend, "suspendTenant", [AUTH, TENANT, LOCKED]),
        route!(tenants::lifecycle::resume, "resumeTenant", [AUTH, TENANT, LOCKED]),
        route!(tenants::lifecycle::restore, "restoreTenant", [AUTH, TENANT, LOCKED, &[(409, RestoreNeedsNew)]]),
        route!(tenants::migrate::migrate_tenant, "migrateTenant", [AUTH, TENANT, BODY, LOCKED, &[(409, NotARootTenant), (409, MigrationLockTimeout), (409, TenantDrifted)]]),
        route!(tenants::migrate::history, "listTenantMigrations", [AUTH, TENANT, QUERY]),
        // Revert: one tenant, with the down migrations.
        route!(tenants::revert::revert_tenant, "revertTenantMigrations", [AUTH, TENANT, BODY, LOCKED, &[(409, NotARootTenant), (409, MigrationLockTimeout), (409, NoDownMigration), (409, DataLossNotAccepted)]]),
        route!(tenants::relocate::move_tenant, "moveTenant", [AUTH, TENANT, BODY, LOCKED, &[(404, ServerNotFound), (409, SameServer), (409, ServerNotActive), (409, NotARootTenant), (503, MoveFailed), (503, NoServerAvailable)]]),
        // Keys and domains.
        route!(api_keys::create, "createApiKey", [AUTH, TENANT, BODY, &[(403, GrantExceedsCaller), (404, SubtenantNotFound), (409, NotARootTenant), (409, ApiKeyLimit)]]),
        route!(api_keys::list, "listApiKeys", [AUTH, TENANT, QUERY]),
        route!(api_keys::revoke, "revokeApiKey", [AUTH, TENANT, PATH, &[(404, ApiKeyNotFound)]]),
        route!(domains::add_domain, "addDomain", [AUTH, TENANT, BODY, &[(409, DomainTaken)]]),
        route!(domains::list_domains, "listDomains", [AUTH, TENANT]),
        // A tenant's own identity provider.
        route!(identity_providers::set, "setIdentityProvider", [AUTH, TENANT, BODY, &[(409, IssuerTaken), (409, IdentityProviderInherited), (409, SubtenantProvidersExist), (422, IdentityProviderInvalid), (422, IdentityProviderAddressRefused), (422, IdentityProviderUnreachable)]]),
        route!(identity_providers::show, "getIdentityProvider", [AUTH, TENANT, &[(404, IdentityProviderNotFound)]]),
        route!(identity_providers::remove, "removeIdentityProvider", [AUTH, TENANT, &[(404, IdentityProviderNotFound)]]),
        // Fleet migrations.
        route!(migrations::start_run, "startMigrationRun", [AUTH, BODY, QUERY, &[(409, MigrationChecksumMismatch), (422, LintFailed), (503, DatabaseServerUnavailable)]]),
        route!(migrations::show_run, "getMigrationRun", [AUTH, PATH, &[(404, RunNotFound)]]),
        route!(migrations::resume_run, "resumeMigrationRun", [AUTH, PATH, QUERY, &[(404, RunNotFound), (409, RunNotResumable), (409, MigrationChecksumMismatch), (503, DatabaseServerUnavailable)]]),
        route!(migrations::versions, "listSchemaVersions", [AUTH]),
        // Revert: a run's tenants, with the down migrations.
        route!(migration_reverts::revert_run, "revertMigrationRun", [AUTH, PATH, BODY, QUERY, &[(404, RunNotFound), (409, RunNotResumable), (409, MigrationChecksumMismatch), (409, NoDownMigration), (409, DataLossNotAccepted)]]),
        route!(migration_reverts::show_revert, "getMigrationRevert", [AUTH, PATH, &[(404, RevertNotFound)]]),
        // Drift (drift plumbing).
        route!(drift::start_scan, "startDriftScan", [AUTH, QUERY]),
        route!(drift::list, "listDrift", [AUTH]),
        route!(drift::tenant, "getTenantDrift", [AUTH, TENANT, &[(409, NotARootTenant)]]),
        // Lint of the pending tenant migrations.
        route!(migration_lint::lint, "lintMigrations", [AUTH, BODY]),
        // Database servers.
        route!(servers::list, "listServers", [AUTH]),
        route!(servers::register, "registerServer", [AUTH, BODY, &[(409, ServerExists), (409, ServerUnusable), (422, InvalidDsn)]]),
        // Before `/v1/servers/{id}`, which would take `load` for an id.
        route!(servers::load, "getServerLoads", [AUTH]),
        route!(rebalance::plan, "planRebalance", [AUTH, QUERY, &[(422, InvalidField)]]),
        route!(rebalance::apply, "rebalanceServers", [AUTH, BODY, &[(409, TenantBusy)]]),
        route!(servers::show, "getServer", [AUTH, PATH, &[(404, ServerNotFound)]]),
        route!(servers::update, "updateServer", [AUTH, PATH, BODY, &[(404, ServerNotFound), (409, WalArchiveUnreadable)]]),
        route!(wal_archives::set, "setServerWalArchive", [AUTH, PATH, BODY, &[(404, ServerNotFound), (409, WalArchiveUnreadable)]]),
        route!(wal_archives::remove, "removeServerWalArchive", [AUTH, PATH, &[(404, ServerNotFound)]]),
        // Usage.
        route!(usage::tenant, "getTenantUsage", [AUTH, TENANT, QUERY]),
        route!(usage::top, "getTopUsage", [AUTH, QUERY]),
        route!(servers::drain, "drainServer", [AUTH, PATH, &[(404, ServerNotFound)]]),
        // Backups.
        route!(backups::take, "backupTenant", [AUTH, TENANT, &[(409, NoBackupLocation), (409, InvalidState), (409, NotARootTenant), (503, DatabaseServerUnavailable)]]),
        route!(backups::list, "listBackups", [AUTH, TENANT]),
        route!(backups::show, "getBackup", [AUTH, TENANT, PATH, &[(404, BackupNotFound)]]),
        route!(backups::restore, "restoreBackup", [AUTH, TENANT, PATH, LOCKED, &[(404, BackupNotFound), (409, NoBackupLocation), (409, RestoreNeedsNew), (409, ArchiveTooNew), (503, RestoreFailed)]]),
        route!(backups::restore_as_new, "restoreBackupAsNew", [AUTH, TENANT, PATH, BODY, &[(404, BackupNotFound), (409, NoBackupLocation), (409, TenantBusy), (409, ArchiveTooNew), (503, RestoreFailed)]]),
        route!(restore_time::window, "getRecoveryWindow", [AUTH, TENANT, &[(409, NoWalArchive), (409, InvalidState), (503, DatabaseServerUnavailable), (503, RestoreFailed)]]),
        route!(restore_time::restore, "restoreTenantToTime", [AUTH, TENANT, BODY, LOCKED, &[(409, NoWalArchive), (422, OutsideRecoveryWindow), (409, InvalidState), (409, RestoreNeedsNew), (409, TenantBusy), (409, ArchiveTooNew), (503, DatabaseServerUnavailable), (503, RestoreFailed)]]),
        // Events.
        route!(events::stream, "streamEvents", [AUTH, QUERY, &[(400, InvalidLastEventId), (503, TooManyStreams)]]),
        route!(events::deliveries, "listWebhookDeliveries", [AUTH, QUERY]),
        // The fleet at a glance, and the console's session (before its files).
        route!(overview::summary, "getFleetSummary", [AUTH]),
        route!(overview::audit, "listFleetAudit", [AUTH, QUERY]),
        route!(console::sign_in, "signIn", [AUTH, BODY]).credential_in_body(),
        route!(console::show_session, "getSession", [AUTH]),
        route!(console::sign_out, "signOut", [AUTH]),
        route!(console::sign_in::start, "startProviderSignIn", [QUERY, &[(404, TenantNotFound), (404, IdentityProviderNotFound), (502, SignInFailed), (503, CatalogUnavailable)]]),
        route!(console::sign_in::callback, "finishProviderSignIn", [AUTH, QUERY, &[(403, SignInFailed), (404, IdentityProviderNotFound), (502, SignInFailed)]]),
        // Operations.
        route!(operations::list, "listOperations", [AUTH, QUERY]),
        route!(operations::show, "getOperation", [AUTH, PATH, &[(404, OperationNotFound)]]),
        route!(operations::cancel, "cancelOperation", [AUTH, PATH, &[(404, OperationNotFound), (409, NotCancellable)]]),
    ]
};

/// Schemas that no attribute names as a body, only a parameter or a
/// `value_type` does.
fn other_schemas() -> Vec<Component> {
    let mut schemas = Vec::new();
    component::<crate::operations::OpKind>(&mut schemas);
    component::<operations::OperationState>(&mut schemas);
    component::<events::DeliveryState>(&mut schemas);
    schemas
}

fn component<T: ToSchema>(schemas: &mut Vec<Component>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// The headers a data-plane operation takes, as the spec describes them.
const TENANT_HEADERS: [(&str, &str); 2] = [
    (
        TENANT_HEADER,
        "The tenant, for a super_admin token (a tenant's own credential names it already). Or use a domain the tenant registered as the Host.",
    ),
    (
        SUBTENANT_HEADER,
        "Narrows a tenant-wide credential to one of its subtenants.",
    ),
];

/// The spec, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| {
        openapi::build(
            ROUTES.iter().map(|r| &r.endpoint),
            other_schemas(),
            &TENANT_HEADERS,
        )
    });
    &DOC
}

/// `GET /openapi.json`
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, routes) in by_path() {
        let methods: Vec<Method> = routes.iter().map(|(m, _)| m.clone()).collect();
        let mut resource = web::resource(path.as_str())
            .app_data(RouteLabel::new(&path))
            .app_data(Allow::new(&methods))
            .default_service(web::to(extract::method_not_allowed));
        for (method, route) in routes {
            resource = resource.route((route.to)(web::method(method)));
        }
        cfg.service(resource);
    }
    cfg.configure(console::files)
        .default_service(web::to(extract::not_found));
}

/// The routes grouped into one resource per path, in the table's order.
fn by_path() -> Vec<(String, Vec<(Method, &'static Route)>)> {
    let mut resources: Vec<(String, Vec<(Method, &'static Route)>)> = Vec::new();
    for route in ROUTES {
        let path = route.endpoint.path();
        let at = match resources.iter().position(|(p, _)| *p == path) {
            Some(at) => at,
            None => {
                resources.push((path, Vec::new()));
                resources.len() - 1
            }
        };
        for method in route.endpoint.methods() {
            resources[at].1.push((method_of(&method), route));
        }
    }
    resources
}

fn method_of(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Post => Method::POST,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Trace => Method::TRACE,
    }
}
