//! Data-plane errors as responses: routing a request to its tenant's
//! database, and the queries run there.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};
use crate::data::DataError;
use crate::tenancy::RouterError;

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::NotFound("agent") => {
                ApiError::not_found(ErrorCode::AgentNotFound, "no such agent")
            }
            DataError::NotFound("call") => {
                ApiError::not_found(ErrorCode::CallNotFound, "no such call")
            }
            DataError::NotFound(what) => {
                ApiError::not_found(ErrorCode::NotFound, format!("no such {what}"))
            }
            DataError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, m)
            }
            DataError::LimitExceeded {
                limit: "maxAgents", ..
            } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::MaxAgentsExceeded,
                e.to_string(),
            ),
            DataError::LimitExceeded { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::MaxConcurrentCallsExceeded,
                e.to_string(),
            ),
            // The body is valid; the tenant's state refuses it.
            DataError::UnknownReference(what) => ApiError::new(
                StatusCode::CONFLICT,
                if what == "agent" {
                    ErrorCode::AgentNotFound
                } else {
                    ErrorCode::NotFound
                },
                format!("no such {what} in this tenant"),
            ),
            DataError::FeatureDisabled(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::FeatureDisabled,
                e.to_string(),
            ),
            DataError::InUse(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::InUse, e.to_string())
            }
            DataError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::DatabaseServerUnavailable,
                "the tenant's database is unavailable; retry shortly",
            )
            .with_retry_after(1)
            .with_source(e),
            DataError::Paused => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TenantWritesPaused,
                "the tenant is being moved; writes resume in a moment",
            )
            .with_retry_after(1),
            DataError::Timeout => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::QueryTimeout,
                "the request ran past this tenant's statement timeout; retry, or narrow it",
            )
            .with_retry_after(1),
            // The operator must fix a grant; the client learns only that
            // the database cannot serve it (the cause goes to the log).
            DataError::Denied(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TenantDatabaseUnavailable,
                "the tenant's database cannot serve this request now; retry later",
            )
            .with_retry_after(30)
            .with_source(e),
            DataError::Query(_) => ApiError::internal(e),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        DataError::from(e).into()
    }
}

impl From<RouterError> for ApiError {
    fn from(e: RouterError) -> Self {
        let unavailable = |code, message| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message).with_retry_after(1)
        };
        match e {
            RouterError::NotFound => {
                ApiError::not_found(ErrorCode::TenantNotFound, "no such tenant")
            }
            RouterError::Suspended => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::TenantSuspended,
                "the tenant is suspended",
            ),
            RouterError::Deleted => {
                ApiError::not_found(ErrorCode::TenantDeleted, "the tenant is deleted")
            }
            RouterError::NotReady(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::TenantNotReady,
                "the tenant is not ready",
            ),
            RouterError::ServerDown => unavailable(
                ErrorCode::DatabaseServerUnavailable,
                "the tenant's database server is down",
            ),
            RouterError::BudgetSpent => unavailable(
                ErrorCode::ConnectionBudgetExhausted,
                "no database connection is free for this tenant; retry shortly",
            ),
            RouterError::ServerUnreachable(_) | RouterError::PoolClosed => unavailable(
                ErrorCode::DatabaseServerUnavailable,
                "the tenant's database is unreachable; retry shortly",
            )
            .with_source(e),
            RouterError::CatalogUnavailable(_) => unavailable(
                ErrorCode::CatalogUnavailable,
                "the control plane cannot reach its catalog; retry shortly",
            )
            .with_source(e),
            RouterError::Lookup(_)
            | RouterError::Inconsistent(_)
            | RouterError::Credentials(_)
            | RouterError::PoolBuild(_)
            // The gateway's alone: HTTP sessions are never refused for it.
            | RouterError::SchemaBehind(_) => ApiError::internal(e),
        }
    }
}
