//! Why a re-seal of the catalog's secrets stopped.

use uuid::Uuid;

use crate::catalog::CatalogError;
use crate::error_code::ErrorCode;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/http/error/tests`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum KeysError {
    #[error("the catalog failed")]
    Catalog(#[from] CatalogError),
    #[error("{what} of {id} opens with none of the configured master keys: configure the key that sealed it, then run again")]
    Unopenable { what: &'static str, id: Uuid },
}

impl KeysError {
    /// The error code the API answers with for this error (see
    /// `TenantsError::code`).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Catalog(inner) => inner.code(),
            // A key the operator has to configure: nothing a client can fix.
            Self::Unopenable { .. } => ErrorCode::InternalError,
        }
    }
}
