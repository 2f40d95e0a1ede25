//! Usage errors as responses: a bad range, an unknown tenant.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};
use crate::usage::UsageError;

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::Invalid(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidQuery,
                e.to_string(),
            ),
            UsageError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::TenantNotFound,
                "no such tenant",
            ),
            UsageError::Catalog(inner) => inner.into(),
        }
    }
}
