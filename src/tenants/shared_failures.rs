//! What the tenant services' errors share (`TenantsError`,
//! `PlacementError`, `BackupsError`): the failures each of them can meet
//! (`NotFound`, `Busy`, `InvalidState`, `Abandoned`, `Inconsistent`, a
//! catalog or provisioner failure), written once as macros over each enum.
//!
//! Rules:
//! - a shared failure has the same code in every service's error, so it
//!   reads the same whichever service met it;
//! - a failure crossing into another service's error keeps its variant when
//!   that error has one, comes back unwrapped when it was nested there
//!   (`Tenant(..)`, `Placement(..)`, `Backups(..)`), and is wrapped only
//!   otherwise, so no failure is wrapped twice.

/// The match of an error's `code()`: the shared failures' codes, then the
/// error's own `arms`.
macro_rules! code_with_shared {
    ($error:expr, { $($arms:tt)* }) => {
        match $error {
            Self::NotFound => $crate::error_code::ErrorCode::TenantNotFound,
            Self::Busy => $crate::error_code::ErrorCode::TenantBusy,
            Self::InvalidState { .. } => $crate::error_code::ErrorCode::InvalidState,
            Self::Abandoned(_) => $crate::error_code::ErrorCode::OperationAbandoned,
            Self::Inconsistent(_) => $crate::error_code::ErrorCode::InternalError,
            Self::Catalog(inner) => inner.code(),
            Self::Provision(inner) => inner.code(),
            $($arms)*
        }
    };
}

/// `impl From<$from> for $to`: the shared failures keep their variant, and
/// so do the `units` (no field) and `fields` (one field) both errors have;
/// the caller's `arms` unwrap what was nested and wrap the rest.
macro_rules! carry_failures {
    ($from:ident => $to:ident, units: [$($unit:ident),*], fields: [$($field:ident),*], { $($arms:tt)* }) => {
        impl From<$from> for $to {
            fn from(e: $from) -> Self {
                match e {
                    $from::NotFound => Self::NotFound,
                    $from::Busy => Self::Busy,
                    $from::InvalidState { action, status } => Self::InvalidState { action, status },
                    $from::Abandoned(a) => Self::Abandoned(a),
                    $from::Inconsistent(what) => Self::Inconsistent(what),
                    $from::Catalog(inner) => Self::Catalog(inner),
                    $from::Provision(inner) => Self::Provision(inner),
                    $($from::$unit => Self::$unit,)*
                    $($from::$field(inner) => Self::$field(inner),)*
                    $($arms)*
                }
            }
        }
    };
}

/// `impl From<CatalogError> for $to`: a busy tenant, a missing one and a
/// fenced operation read as the shared failures; the caller's `arms` name
/// what else its error takes from the catalog; the rest stays the catalog's.
macro_rules! from_catalog {
    ($to:ident, { $($arms:tt)* }) => {
        impl From<$crate::catalog::CatalogError> for $to {
            fn from(e: $crate::catalog::CatalogError) -> Self {
                use $crate::catalog::CatalogError;
                match e {
                    CatalogError::TenantBusy => Self::Busy,
                    CatalogError::ParentMissing | CatalogError::TenantMissing => Self::NotFound,
                    CatalogError::Fenced => Self::Abandoned($crate::operations::Abandoned),
                    $($arms)*
                    other => Self::Catalog(other),
                }
            }
        }
    };
}

/// `copy` and `scratch`, for an error with a `Copy { step, source }`
/// variant (a move's or a backup's dump and copy).
macro_rules! copy_failures {
    () => {
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
    };
}

pub(crate) use {carry_failures, code_with_shared, copy_failures, from_catalog};
