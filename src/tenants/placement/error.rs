//! Why a move or a drain was refused or failed.

use crate::catalog::CatalogError;
use crate::domain::TenantStatus;
use crate::error_code::ErrorCode;
use crate::provisioner::ProvisionError;
use crate::tenants::TenantsError;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/http/error/tests`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum PlacementError {
    #[error("no such tenant")]
    NotFound,
    #[error("another operation on this tenant is in progress")]
    Busy,
    #[error("cannot {action} a tenant that is {status:?}")]
    InvalidState {
        action: &'static str,
        status: TenantStatus,
    },
    #[error("no such database server")]
    ServerNotFound,
    #[error("the tenant is already on that server")]
    SameServer,
    #[error("the target server is not active (draining or down)")]
    ServerNotActive,
    /// The same words as the lifecycle's: a drain's items are judged by them.
    #[error("no active database server can take a tenant")]
    NoServer,
    #[error(transparent)]
    Abandoned(#[from] crate::operations::Abandoned),
    #[error("copying the tenant's database failed: {step}")]
    Copy {
        step: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error(transparent)]
    Dump(#[from] crate::dump::DumpError),
    #[error("catalog inconsistency: {0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Catalog(CatalogError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// The tenant's own records (its view, its role password) failed.
    #[error(transparent)]
    Tenant(Box<TenantsError>),
}

impl PlacementError {
    /// A copy that failed at `step` because of `source`.
    pub(crate) fn copy(
        step: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Copy {
            step,
            source: Some(Box::new(source)),
        }
    }

    /// The scratch folder for the dump could not be made.
    pub(crate) fn scratch(e: std::io::Error) -> Self {
        Self::copy("creating the scratch folder", e)
    }

    /// The error code the API answers with, and the one a failed move or
    /// drain records (see `TenantsError::code`).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::TenantNotFound,
            Self::Busy => ErrorCode::TenantBusy,
            Self::InvalidState { .. } => ErrorCode::InvalidState,
            Self::ServerNotFound => ErrorCode::ServerNotFound,
            Self::SameServer => ErrorCode::SameServer,
            Self::ServerNotActive => ErrorCode::ServerNotActive,
            Self::NoServer => ErrorCode::NoServerAvailable,
            Self::Abandoned(_) => ErrorCode::OperationAbandoned,
            Self::Copy { .. } | Self::Dump(_) => ErrorCode::MoveFailed,
            Self::Inconsistent(_) => ErrorCode::InternalError,
            Self::Catalog(inner) => inner.code(),
            Self::Provision(inner) => inner.code(),
            Self::Tenant(inner) => inner.code(),
        }
    }
}

impl From<CatalogError> for PlacementError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::TenantBusy => Self::Busy,
            CatalogError::ParentMissing | CatalogError::TenantMissing => Self::NotFound,
            CatalogError::Fenced => Self::Abandoned(crate::operations::Abandoned),
            CatalogError::ServerNotActive => Self::ServerNotActive,
            other => Self::Catalog(other),
        }
    }
}

/// The lifecycle's failures a placement shares read as the placement's
/// own, so a drain sees `Busy` or `Abandoned` however it arose.
impl From<TenantsError> for PlacementError {
    fn from(e: TenantsError) -> Self {
        match e {
            TenantsError::NotFound => Self::NotFound,
            TenantsError::Busy => Self::Busy,
            TenantsError::InvalidState { action, status } => Self::InvalidState { action, status },
            TenantsError::ServerNotActive => Self::ServerNotActive,
            TenantsError::NoServer => Self::NoServer,
            TenantsError::Abandoned(a) => Self::Abandoned(a),
            TenantsError::Inconsistent(what) => Self::Inconsistent(what),
            TenantsError::Catalog(inner) => Self::Catalog(inner),
            TenantsError::Provision(inner) => Self::Provision(inner),
            TenantsError::Placement(inner) => inner,
            other => Self::Tenant(Box::new(other)),
        }
    }
}
