//! A tenant migration's failures: a lock timeout is the tenant's own
//! traffic in the way (409, try again later); the rest is internal.

use actix_web::http::StatusCode;

use super::ApiError;
use crate::error_code::ErrorCode;
use crate::migrator::MigrateError;

impl From<MigrateError> for ApiError {
    fn from(e: MigrateError) -> Self {
        match e {
            MigrateError::LockTimeout { attempts, .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::MigrationLockTimeout,
                format!(
                    "the migration gave up after {attempts} lock timeouts: a long transaction \
                     on the tenant's database holds a lock it needs; try again later"
                ),
            ),
            // Revert's refusals (`revert.rs`).
            ref inner if super::revert::refused(inner) => super::revert::refusal(inner),
            other => ApiError::internal(other),
        }
    }
}
