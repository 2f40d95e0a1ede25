//! Revert's refusals as responses: a run's revert asked while the run
//! still runs (409 `run_not_resumable`), and, from one tenant's revert or a
//! run's, a version without a down file (409 `no_down_migration`) or a
//! destructive down not accepted (409 `data_loss_not_accepted`). Nothing ran.

use actix_web::http::StatusCode;

use super::ApiError;
use crate::fleet::FleetError;
use crate::migrator::MigrateError;
use crate::tenants::TenantsError;

/// Whether a migrator error is one of revert's refusals.
pub(super) fn refused(e: &MigrateError) -> bool {
    matches!(
        e,
        MigrateError::NoDownMigration { .. } | MigrateError::DataLossNotAccepted { .. }
    )
}

/// A refusal, as the response names it.
pub(super) fn refusal(e: &MigrateError) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())
}

/// A run's revert refused.
pub(super) fn fleet(e: FleetError) -> ApiError {
    match e {
        FleetError::Revert(inner) => TenantsError::Migrate(inner).into(),
        other => ApiError::new(StatusCode::CONFLICT, other.code(), other.to_string()),
    }
}
