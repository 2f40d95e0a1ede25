use thiserror::Error;

use crate::error_code::ErrorCode;

/// What can go wrong talking to the catalog database.
#[derive(Debug, Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum CatalogError {
    #[error("the catalog database is unavailable")]
    Unavailable(#[source] deadpool_postgres::PoolError),
    #[error("cannot connect to the catalog database")]
    Connect(#[source] tokio_postgres::Error),
    #[error("catalog query failed")]
    Query(#[source] tokio_postgres::Error),
    /// The session went away under the query (a catalog restart, a
    /// terminated backend): retrying on a fresh one may well work.
    #[error("the catalog connection was lost")]
    Lost(#[source] tokio_postgres::Error),
    #[error("upgrading the catalog schema failed")]
    Schema(#[from] refinery::Error),
    #[error("the slug is taken by another tenant")]
    SlugTaken,
    #[error("another operation on this tenant is in progress")]
    TenantBusy,
    #[error("the parent tenant does not exist")]
    ParentMissing,
    #[error("no such tenant")]
    TenantMissing,
    #[error("the operation was claimed by another process; this one may change nothing more")]
    Fenced,
    #[error("this process holds no owner lease on the catalog right now")]
    NoLease,
    #[error("the tenant has {0} live API keys, the most it may have")]
    ApiKeyLimit(u32),
    #[error("a server with this name or address is already registered")]
    ServerExists,
    /// A placement's server is no longer `active` (draining or down) when
    /// the placement is written: the caller picks again or gives up.
    #[error("the target server is not active (draining or down)")]
    ServerNotActive,
    /// A tenant migration differs from the one the fleet applied under its
    /// version (an edited file, or another build's).
    #[error("tenant migration V{version}__{name} differs from the one this fleet applied under version {version} (checksum {applied}, this one {found}); restore the applied file, and put changes in a new version")]
    MigrationChecksumMismatch {
        version: i32,
        name: String,
        applied: String,
        found: String,
    },
    #[error("cannot build the catalog pool")]
    Pool(#[from] deadpool_postgres::BuildError),
    #[error("the catalog database URL")]
    Dsn(#[from] crate::pg::PgError),
}

impl From<tokio_postgres::Error> for CatalogError {
    fn from(e: tokio_postgres::Error) -> Self {
        // Class 08 (connection exception) and 57P (operator intervention:
        // shutdown, terminated backend), or a session already closed.
        let lost = e.is_closed()
            || e.code()
                .is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57P"));
        if lost {
            Self::Lost(e)
        } else {
            Self::Query(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for CatalogError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(e)
    }
}

impl CatalogError {
    /// The error code the API answers with for this error; an operation
    /// that fails with it records the same code (see `operations::Lease`).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable(_) | Self::Connect(_) | Self::Lost(_) | Self::NoLease => {
                ErrorCode::CatalogUnavailable
            }
            Self::SlugTaken => ErrorCode::SlugTaken,
            Self::TenantBusy => ErrorCode::TenantBusy,
            Self::ParentMissing | Self::TenantMissing => ErrorCode::TenantNotFound,
            Self::Fenced => ErrorCode::OperationAbandoned,
            Self::ApiKeyLimit(_) => ErrorCode::ApiKeyLimit,
            Self::ServerExists => ErrorCode::ServerExists,
            Self::ServerNotActive => ErrorCode::ServerNotActive,
            Self::MigrationChecksumMismatch { .. } => ErrorCode::MigrationChecksumMismatch,
            Self::Query(_) | Self::Schema(_) | Self::Pool(_) | Self::Dsn(_) => {
                ErrorCode::InternalError
            }
        }
    }
}
