//! A fleet run refused by its lint gate: 422 `lint_failed` with the
//! findings in `details`, or 422 `invalid_field` for an `acknowledge` that
//! names no rule.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode, ErrorDetails};
use crate::fleet::FleetError;

pub(super) fn refusal(e: FleetError) -> ApiError {
    let message = e.to_string();
    match e {
        FleetError::LintFailed(findings) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::LintFailed,
            message,
        )
        .with_details(ErrorDetails {
            findings,
            ..Default::default()
        }),
        _ => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            message,
        ),
    }
}
