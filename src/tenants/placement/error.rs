//! Why a move or a drain was refused or failed.

use crate::catalog::CatalogError;
use crate::domain::TenantStatus;
use crate::error_code::ErrorCode;
use crate::provisioner::ProvisionError;
use crate::tenants::shared_failures::{
    carry_failures, code_with_shared, copy_failures, from_catalog,
};
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
    copy_failures!();

    /// The error code the API answers with, and the one a failed move or
    /// drain records (see `TenantsError::code`).
    pub fn code(&self) -> ErrorCode {
        code_with_shared!(self, {
            Self::ServerNotFound => ErrorCode::ServerNotFound,
            Self::SameServer => ErrorCode::SameServer,
            Self::ServerNotActive => ErrorCode::ServerNotActive,
            Self::NoServer => ErrorCode::NoServerAvailable,
            Self::Copy { .. } | Self::Dump(_) => ErrorCode::MoveFailed,
            Self::Tenant(inner) => inner.code(),
        })
    }
}

from_catalog!(PlacementError, {
    CatalogError::ServerNotActive => Self::ServerNotActive,
});

// The lifecycle's failures a placement shares read as the placement's
// own, so a drain sees `Busy` or `Abandoned` however it arose.
carry_failures!(TenantsError => PlacementError, units: [ServerNotActive, NoServer], fields: [], {
    TenantsError::Placement(inner) => inner,
    other => Self::Tenant(Box::new(other)),
});
