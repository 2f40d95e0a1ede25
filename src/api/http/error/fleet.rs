//! Fleet runs' errors as responses (moved out of `control.rs`, which had
//! grown past its size): a missing run, a run that cannot resume, a lint
//! refusal (`lint.rs`), a revert's refusals (`revert.rs`).

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};
use crate::fleet::FleetError;
use crate::tenants::TenantsError;

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::NotFound => {
                ApiError::not_found(ErrorCode::RunNotFound, "no such migration run")
            }
            FleetError::RevertNotFound => {
                ApiError::not_found(ErrorCode::RevertNotFound, "no such revert")
            }
            FleetError::NotResumable(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::RunNotResumable,
                e.to_string(),
            ),
            FleetError::BadConcurrency => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                e.to_string(),
            ),
            FleetError::Catalog(inner) => inner.into(),
            FleetError::Abandoned(inner) => TenantsError::Abandoned(inner).into(),
            FleetError::Provision(inner) => crate::tenants::TenantsError::from(inner).into(),
            // Lint before a run (error/lint.rs).
            e @ (FleetError::LintFailed(_) | FleetError::UnknownRule(_)) => super::lint::refusal(e),
            e @ (FleetError::StillRunning(_) | FleetError::Revert(_)) => super::revert::fleet(e),
        }
    }
}
