//! Usage errors as responses: an unknown tenant; a sampling failure is internal.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};
use crate::usage::UsageError;

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        match e {
            // Only a sample or a journal gives it, never a request.
            UsageError::Sample(_) => ApiError::internal(e),
            UsageError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::TenantNotFound,
                "no such tenant",
            ),
            UsageError::Catalog(inner) => inner.into(),
        }
    }
}
