//! Control-plane errors as responses: credentials, the catalog, the tenant
//! lifecycle, database servers and fleet runs.

use actix_web::http::StatusCode;

use super::ApiError;
use crate::auth::AuthError;
use crate::backup::BackupError;
use crate::catalog::CatalogError;
use crate::fleet::FleetError;
use crate::provisioner::ProvisionError;
use crate::servers::ServersError;
use crate::tenants::TenantsError;

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let (status, code, message) = match &e {
            AuthError::MissingCredentials => (
                StatusCode::UNAUTHORIZED,
                "missing_credentials",
                "this route needs a bearer token",
            ),
            AuthError::InvalidToken(_) | AuthError::InvalidCredential(_) => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is not valid",
            ),
            AuthError::Expired => (
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the token has expired",
            ),
            AuthError::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "the token does not allow this request",
            ),
            AuthError::Escalation(_) => (
                StatusCode::FORBIDDEN,
                "grant_exceeds_caller",
                "a key may not allow more than the credential that mints it",
            ),
            AuthError::Csrf => (
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "this request needs the console session's X-CSRF-Token header",
            ),
            AuthError::Key(_) => {
                return ApiError::internal(e);
            }
            AuthError::Lookup(_) | AuthError::Busy => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "catalog_unavailable",
                    "credentials cannot be checked right now; retry shortly",
                )
                .with_retry_after(1)
                .with_source(e);
            }
        };
        ApiError::new(status, code, message).with_source(e)
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Unavailable(_) | CatalogError::Connect(_) | CatalogError::Lost(_) => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "catalog_unavailable",
                    "the control plane cannot reach its catalog; retry shortly",
                )
                .with_retry_after(1)
                .with_source(e)
            }
            CatalogError::ApiKeyLimit(_) => {
                ApiError::new(StatusCode::CONFLICT, "api_key_limit", e.to_string())
            }
            CatalogError::ServerExists => ApiError::new(
                StatusCode::CONFLICT,
                "server_exists",
                "a server with this name or address is already registered",
            ),
            // The lifecycle's own refusals, however they arrive.
            CatalogError::SlugTaken
            | CatalogError::TenantBusy
            | CatalogError::ParentMissing
            | CatalogError::TenantMissing
            | CatalogError::Fenced
            | CatalogError::ServerNotActive => TenantsError::from(e).into(),
            CatalogError::NoLease => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "catalog_unavailable",
                "the control plane cannot reach its catalog; retry shortly",
            )
            .with_retry_after(1)
            .with_source(e),
            CatalogError::Query(_)
            | CatalogError::Schema(_)
            | CatalogError::Pool(_)
            | CatalogError::Dsn(_) => ApiError::internal(e),
        }
    }
}

impl From<TenantsError> for ApiError {
    fn from(e: TenantsError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            TenantsError::NotFound => ApiError::not_found("tenant_not_found", "no such tenant"),
            TenantsError::SlugTaken => ApiError::new(
                StatusCode::CONFLICT,
                "slug_taken",
                "another tenant has this slug",
            ),
            TenantsError::Busy => ApiError::new(
                StatusCode::CONFLICT,
                "tenant_busy",
                "another operation on this tenant is in progress; retry shortly",
            )
            .with_retry_after(1),
            TenantsError::InvalidState { .. } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_state", e.to_string())
            }
            TenantsError::InvalidField(ref field) => {
                ApiError::new(unprocessable, "invalid_field", field.to_string())
            }
            // Refusals of a valid request because of what the tenant is:
            // the spec allows the request, so they are conflicts, not 422s.
            TenantsError::ExceedsParent(ref field) => {
                ApiError::new(StatusCode::CONFLICT, "exceeds_parent", field.to_string())
            }
            TenantsError::NotRoot(message) => {
                ApiError::new(StatusCode::CONFLICT, "not_a_root_tenant", message)
            }
            TenantsError::TooDeep => ApiError::new(
                StatusCode::CONFLICT,
                "subtenant_depth",
                "tenants have two levels: a subtenant cannot have subtenants",
            ),
            TenantsError::ParentNotActive => ApiError::new(
                StatusCode::CONFLICT,
                "parent_not_active",
                "the parent tenant is not active",
            ),
            TenantsError::NoServer => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_server_available",
                "no active database server can take a new tenant",
            )
            .with_retry_after(30),
            TenantsError::ServerNotFound => {
                ApiError::not_found("server_not_found", "no such database server")
            }
            TenantsError::RestoreNeedsNew => {
                ApiError::new(StatusCode::CONFLICT, "restore_needs_new", e.to_string())
            }
            TenantsError::NotDeleted => ApiError::new(
                StatusCode::CONFLICT,
                "tenant_not_deleted",
                "only a soft-deleted tenant can be purged: delete it first (without purge=true)",
            ),
            TenantsError::Abandoned(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "operation_abandoned",
                "this replica lost the operation; another one finishes it; retry shortly",
            )
            .with_retry_after(2)
            .with_source(e),
            TenantsError::SameServer => ApiError::new(
                StatusCode::CONFLICT,
                "same_server",
                "the tenant is already on that server",
            ),
            TenantsError::ServerNotActive => ApiError::new(
                StatusCode::CONFLICT,
                "server_not_active",
                "the target server is draining or down",
            ),
            TenantsError::Copy { .. } | TenantsError::Dump(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "move_failed",
                "the move failed before its cutover; the tenant stays on its server",
            )
            .with_retry_after(30)
            .with_source(e),
            TenantsError::Restore(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "restore_failed",
                "the restore failed before anything live changed; retry, or restore as a new tenant",
            )
            .with_retry_after(30)
            .with_source(e),
            TenantsError::NoBackupLocation => ApiError::new(
                StatusCode::CONFLICT,
                "no_backup_location",
                "this installation has no backup location (set backup.location)",
            ),
            TenantsError::BackupNotFound => {
                ApiError::not_found("backup_not_found", "no such backup of this tenant")
            }
            TenantsError::Cancelled => ApiError::new(
                StatusCode::CONFLICT,
                "cancelled",
                "the operation was cancelled",
            ),
            TenantsError::ForeignBackup => ApiError::new(
                StatusCode::CONFLICT,
                "backup_refused",
                "the backup holds another tenant than the one it is recorded for",
            ),
            // What the backup is, not the request: a conflict, like the
            // other refused backups.
            TenantsError::ArchiveTooNew { .. } => {
                ApiError::new(StatusCode::CONFLICT, "archive_too_new", e.to_string())
            }
            TenantsError::Backup(ref inner) => match inner {
                BackupError::NotAnArchive(_)
                | BackupError::Corrupt(_)
                | BackupError::Unsealed
                | BackupError::UnsupportedFormat(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    "backup_refused",
                    format!("the backup was refused before anything was touched: {inner}"),
                ),
                BackupError::Missing(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    "backup_missing",
                    "the backup's object is gone from the backup location",
                )
                .with_source(e),
                BackupError::Location(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backup_location_unavailable",
                    "the backup location cannot be reached; retry shortly",
                )
                .with_retry_after(30)
                .with_source(e),
                BackupError::Io(_) => ApiError::internal(e),
            },
            TenantsError::Catalog(inner) => inner.into(),
            TenantsError::Provision(ProvisionError::Connect { .. }) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_server_unavailable",
                "the tenant's database server is unavailable; retry shortly",
            )
            .with_retry_after(1)
            .with_source(e),
            other => ApiError::internal(other),
        }
    }
}

impl From<ServersError> for ApiError {
    fn from(e: ServersError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            ServersError::NotFound => {
                ApiError::not_found("server_not_found", "no such database server")
            }
            ServersError::InvalidDsn(_) => {
                ApiError::new(unprocessable, "invalid_dsn", e.to_string())
            }
            // The operator who registers a server needs to know why it was
            // refused (a wrong password, a missing right), so the cause is
            // part of this 409's message; it never reaches a tenant. The
            // DSN was well formed (the spec's pattern), so the refusal is
            // about the server's state, not the request.
            ServersError::Unusable { .. } => {
                // The whole chain: a TLS refusal's reason sits a few causes down.
                let mut message = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    message = format!("{message}: {c}");
                    cause = c.source();
                }
                ApiError::new(StatusCode::CONFLICT, "server_unusable", message)
            }
            ServersError::Catalog(inner) => inner.into(),
            ServersError::Provision(inner) => TenantsError::from(inner).into(),
        }
    }
}

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::NotFound => ApiError::not_found("run_not_found", "no such migration run"),
            FleetError::NotResumable(_) => {
                ApiError::new(StatusCode::CONFLICT, "run_not_resumable", e.to_string())
            }
            FleetError::BadConcurrency => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                e.to_string(),
            ),
            FleetError::Catalog(inner) => inner.into(),
            FleetError::Abandoned(inner) => TenantsError::Abandoned(inner).into(),
            FleetError::Provision(inner) => crate::tenants::TenantsError::from(inner).into(),
        }
    }
}
