//! The lifecycle's errors; a placement's and a backup's cross in and out
//! of them keeping their codes (see the module's rules).

use crate::catalog::CatalogError;
use crate::crypto::CryptoError;
use crate::domain::TenantStatus;
use crate::error_code::ErrorCode;
use crate::migrator::MigrateError;
use crate::provisioner::ProvisionError;
use crate::tenant_config::FieldError;
use crate::tenants::shared_failures::{carry_failures, code_with_shared, from_catalog};
use crate::tenants::{BackupsError, PlacementError};

#[derive(Debug, thiserror::Error)]
// The error table test (`api/http/error/tests`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum TenantsError {
    #[error("no such tenant")]
    NotFound,
    #[error("the slug is taken")]
    SlugTaken,
    #[error("another operation on this tenant is in progress")]
    Busy,
    #[error("cannot {action} a tenant that is {status:?}")]
    InvalidState {
        action: &'static str,
        status: TenantStatus,
    },
    #[error("{0}")]
    InvalidField(FieldError),
    #[error("a subtenant cannot have subtenants")]
    TooDeep,
    /// A subtenant's setting reaches past what its parent allows.
    #[error("{0}")]
    ExceedsParent(FieldError),
    /// The request only applies to a root tenant (its own database and tier).
    #[error("{0}")]
    NotRoot(&'static str),
    #[error("the parent tenant is not active")]
    ParentNotActive,
    #[error("no active database server can take a tenant")]
    NoServer,
    #[error("only a soft-deleted tenant can be purged: delete it first (without purge)")]
    NotDeleted,
    /// Its schema was found drifted at its version (drift plumbing): a
    /// migration needs `allow_drift`.
    #[error("the tenant's schema has drifted from its version (found {0}); migrate with allow_drift, or repair it first")]
    Drifted(String),
    #[error(transparent)]
    Abandoned(#[from] crate::operations::Abandoned),
    #[error("the target server is not active (draining or down)")]
    ServerNotActive,
    #[error("catalog inconsistency: {0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Catalog(CatalogError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A move's failure where the lifecycle waits for one (finishing a
    /// move another process left).
    #[error(transparent)]
    Placement(PlacementError),
    /// A backup's failure where the lifecycle waits for one (a purge's
    /// final backup, finishing a restore another process left).
    #[error(transparent)]
    Backups(BackupsError),
}

// A placement's and a backup's failures the lifecycle shares read as its own.
carry_failures!(PlacementError => TenantsError, units: [ServerNotActive, NoServer], fields: [], {
    PlacementError::Tenant(inner) => *inner,
    other => Self::Placement(other),
});
carry_failures!(BackupsError => TenantsError, units: [], fields: [Migrate, Crypto], {
    BackupsError::Tenant(inner) => *inner,
    other => Self::Backups(other),
});

from_catalog!(TenantsError, {
    CatalogError::SlugTaken => Self::SlugTaken,
    CatalogError::ServerNotActive => Self::ServerNotActive,
});

impl From<FieldError> for TenantsError {
    fn from(e: FieldError) -> Self {
        Self::InvalidField(e)
    }
}

impl TenantsError {
    /// The error code the API answers with for this error, and the one an
    /// operation that fails with it records with its `failed` state, so a
    /// failure reads the same whether the CLI or the API started it.
    pub fn code(&self) -> ErrorCode {
        code_with_shared!(self, {
            Self::SlugTaken => ErrorCode::SlugTaken,
            Self::InvalidField(_) => ErrorCode::InvalidField,
            Self::TooDeep => ErrorCode::SubtenantDepth,
            Self::ExceedsParent(_) => ErrorCode::ExceedsParent,
            Self::NotRoot(_) => ErrorCode::NotARootTenant,
            Self::ParentNotActive => ErrorCode::ParentNotActive,
            Self::NoServer => ErrorCode::NoServerAvailable,
            Self::NotDeleted => ErrorCode::TenantNotDeleted,
            Self::Drifted(_) => ErrorCode::TenantDrifted,
            Self::ServerNotActive => ErrorCode::ServerNotActive,
            Self::Placement(inner) => inner.code(),
            Self::Backups(inner) => inner.code(),
            Self::Migrate(inner) => inner.code(),
            Self::Crypto(_) => ErrorCode::InternalError,
        })
    }
}
