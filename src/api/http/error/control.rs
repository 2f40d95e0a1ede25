//! Control-plane errors as responses: credentials, the catalog, the tenant
//! lifecycle (database servers: `servers.rs`; fleet runs: `fleet.rs`).

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};
use crate::auth::AuthError;
use crate::backup::BackupError;
use crate::services::CatalogError;
use crate::services::ProvisionError;
use crate::tenants::{BackupsError, KeysError, PlacementError, TenantsError};

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let (status, code, message) = match &e {
            AuthError::MissingCredentials => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::MissingCredentials,
                "this route needs a bearer token",
            ),
            AuthError::InvalidToken(_) | AuthError::InvalidCredential(_) => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidToken,
                "the token is not valid",
            ),
            AuthError::Expired => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::TokenExpired,
                "the token has expired",
            ),
            AuthError::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "the token does not allow this request",
            ),
            AuthError::CrossTenant(why) => (StatusCode::FORBIDDEN, ErrorCode::CrossTenant, *why),
            AuthError::Escalation(_) => (
                StatusCode::FORBIDDEN,
                ErrorCode::GrantExceedsCaller,
                "a key may not allow more than the credential that mints it",
            ),
            AuthError::Csrf => (
                StatusCode::FORBIDDEN,
                ErrorCode::CsrfFailed,
                "this request needs the console session's X-CSRF-Token header",
            ),
            AuthError::NoRoleMapped => (
                StatusCode::FORBIDDEN,
                ErrorCode::NoRoleMapped,
                "the identity provider's claims for this user map to no role",
            ),
            AuthError::ClaimsRefused(why) => {
                (StatusCode::FORBIDDEN, ErrorCode::ClaimsRefused, *why)
            }
            AuthError::ProviderUnavailable => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::IdentityProviderUnavailable,
                    "the tenant's identity provider cannot be reached to check this token; retry shortly",
                )
                .with_retry_after(5)
                .with_source(e);
            }
            AuthError::Key(_) => {
                return ApiError::internal(e);
            }
            AuthError::Lookup(_) | AuthError::Busy => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::CatalogUnavailable,
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
                    ErrorCode::CatalogUnavailable,
                    "the control plane cannot reach its catalog; retry shortly",
                )
                .with_retry_after(1)
                .with_source(e)
            }
            CatalogError::ApiKeyLimit(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::ApiKeyLimit, e.to_string())
            }
            CatalogError::MigrationChecksumMismatch { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::MigrationChecksumMismatch,
                e.to_string(),
            ),
            CatalogError::ServerExists => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ServerExists,
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
                ErrorCode::CatalogUnavailable,
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
            TenantsError::NotFound => tenant_not_found(),
            TenantsError::SlugTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SlugTaken,
                "another tenant has this slug",
            ),
            TenantsError::Busy => tenant_busy(),
            TenantsError::InvalidState { .. } => invalid_state(&e),
            TenantsError::InvalidField(ref field) => {
                ApiError::new(unprocessable, ErrorCode::InvalidField, field.to_string())
            }
            // Refusals of a valid request because of what the tenant is:
            // the spec allows the request, so they are conflicts, not 422s.
            TenantsError::ExceedsParent(ref field) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ExceedsParent,
                field.to_string(),
            ),
            TenantsError::NotRoot(message) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::NotARootTenant, message)
            }
            TenantsError::TooDeep => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SubtenantDepth,
                "tenants have two levels: a subtenant cannot have subtenants",
            ),
            TenantsError::ParentNotActive => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ParentNotActive,
                "the parent tenant is not active",
            ),
            TenantsError::NoServer => no_server(),
            TenantsError::NotDeleted => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::TenantNotDeleted,
                "only a soft-deleted tenant can be purged: delete it first (without purge=true)",
            ),
            TenantsError::Drifted(_) => super::drift::tenant_drifted(&e),
            TenantsError::Abandoned(_) => abandoned(e),
            TenantsError::ServerNotActive => server_not_active(),
            TenantsError::Catalog(inner) => inner.into(),
            TenantsError::Placement(inner) => inner.into(),
            TenantsError::Backups(inner) => inner.into(),
            TenantsError::Provision(ProvisionError::Connect { .. }) => server_unavailable(e),
            TenantsError::Migrate(inner) => inner.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<PlacementError> for ApiError {
    fn from(e: PlacementError) -> Self {
        match e {
            PlacementError::NotFound => tenant_not_found(),
            PlacementError::Busy => tenant_busy(),
            PlacementError::InvalidState { .. } => invalid_state(&e),
            PlacementError::ServerNotFound => server_not_found(),
            PlacementError::SameServer => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SameServer,
                "the tenant is already on that server",
            ),
            PlacementError::ServerNotActive => server_not_active(),
            PlacementError::NoServer => no_server(),
            PlacementError::Abandoned(_) => abandoned(e),
            PlacementError::Copy { .. } | PlacementError::Dump(_) => move_failed(e),
            PlacementError::Catalog(inner) => inner.into(),
            PlacementError::Tenant(inner) => (*inner).into(),
            PlacementError::Provision(ProvisionError::Connect { .. }) => server_unavailable(e),
            PlacementError::Provision(_) | PlacementError::Inconsistent(_) => ApiError::internal(e),
        }
    }
}

impl From<BackupsError> for ApiError {
    fn from(e: BackupsError) -> Self {
        match e {
            BackupsError::NotFound => tenant_not_found(),
            BackupsError::Busy => tenant_busy(),
            BackupsError::InvalidState { .. } => invalid_state(&e),
            BackupsError::RestoreNeedsNew => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::RestoreNeedsNew, e.to_string())
            }
            BackupsError::Abandoned(_) => abandoned(e),
            BackupsError::Copy { .. } | BackupsError::Dump(_) => move_failed(e),
            BackupsError::Restore(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RestoreFailed,
                "the restore failed before anything live changed; retry, or restore as a new tenant",
            )
            .with_retry_after(30)
            .with_source(e),
            BackupsError::NoBackupLocation => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NoBackupLocation,
                "this installation has no backup location (set backup.location)",
            ),
            BackupsError::BackupNotFound => {
                ApiError::not_found(ErrorCode::BackupNotFound, "no such backup of this tenant")
            }
            BackupsError::Cancelled => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Cancelled,
                "the operation was cancelled",
            ),
            BackupsError::ForeignBackup => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::BackupRefused,
                "the backup holds another tenant than the one it is recorded for",
            ),
            // What the backup is, not the request: a conflict, like the
            // other refused backups.
            BackupsError::ArchiveTooNew { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::ArchiveTooNew, e.to_string())
            }
            BackupsError::NoWalArchive => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::NoWalArchive, e.to_string())
            }
            BackupsError::OutsideRecoveryWindow { earliest, latest } => {
                let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or("none yet".to_string(), |t| t.to_rfc3339())
                };
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::OutsideRecoveryWindow,
                    format!(
                        "the time is outside the tenant's recovery window (earliest {}, latest {}); see GET /v1/tenants/{{id}}/recovery-window",
                        at(earliest),
                        at(latest)
                    ),
                )
            }
            BackupsError::WalArchive(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RestoreFailed,
                "recovering the tenant's database from its WAL archive failed; nothing live changed",
            )
            .with_retry_after(30)
            .with_source(e),
            BackupsError::Backup(ref inner) => match inner {
                BackupError::NotAnArchive(_)
                | BackupError::Corrupt(_)
                | BackupError::Unsealed
                | BackupError::UnsupportedFormat(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::BackupRefused,
                    format!("the backup was refused before anything was touched: {inner}"),
                ),
                BackupError::Missing(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::BackupMissing,
                    "the backup's object is gone from the backup location",
                )
                .with_source(e),
                BackupError::Location(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::BackupLocationUnavailable,
                    "the backup location cannot be reached; retry shortly",
                )
                .with_retry_after(30)
                .with_source(e),
                BackupError::Io(_) => ApiError::internal(e),
            },
            BackupsError::Catalog(inner) => inner.into(),
            BackupsError::Tenant(inner) => (*inner).into(),
            BackupsError::Provision(ProvisionError::Connect { .. }) => server_unavailable(e),
            BackupsError::Provision(_)
            | BackupsError::Inconsistent(_)
            | BackupsError::Migrate(_)
            | BackupsError::Crypto(_) => ApiError::internal(e),
        }
    }
}

// The answers the lifecycle and its nouns share: a failure reads the same
// whichever noun's error carries it.

fn tenant_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::TenantNotFound, "no such tenant")
}

fn tenant_busy() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::TenantBusy,
        "another operation on this tenant is in progress; retry shortly",
    )
    .with_retry_after(1)
}

fn invalid_state(e: &impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidState, e.to_string())
}

fn no_server() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::NoServerAvailable,
        "no active database server can take a new tenant",
    )
    .with_retry_after(30)
}

pub(super) fn server_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::ServerNotFound, "no such database server")
}

fn server_not_active() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::ServerNotActive,
        "the target server is draining or down",
    )
}

fn abandoned(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::OperationAbandoned,
        "this replica lost the operation; another one finishes it; retry shortly",
    )
    .with_retry_after(2)
    .with_source(e)
}

fn move_failed(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::MoveFailed,
        "the move failed before its cutover; the tenant stays on its server",
    )
    .with_retry_after(30)
    .with_source(e)
}

/// A tenant database server that did not answer (`ProvisionError::Connect`).
fn server_unavailable(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::DatabaseServerUnavailable,
        "the tenant's database server is unavailable; retry shortly",
    )
    .with_retry_after(1)
    .with_source(e)
}

impl From<KeysError> for ApiError {
    fn from(e: KeysError) -> Self {
        match e {
            KeysError::Catalog(inner) => inner.into(),
            KeysError::Unopenable { .. } => ApiError::internal(e),
        }
    }
}
