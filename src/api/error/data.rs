//! Data-plane errors as responses: routing a request to its tenant's
//! database, and the queries run there.

use actix_web::http::StatusCode;

use super::ApiError;
use crate::data::DataError;
use crate::router::RouterError;

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::NotFound("agent") => ApiError::not_found("agent_not_found", "no such agent"),
            DataError::NotFound("call") => ApiError::not_found("call_not_found", "no such call"),
            DataError::NotFound(what) => {
                ApiError::not_found("not_found", format!("no such {what}"))
            }
            DataError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", m)
            }
            DataError::LimitExceeded {
                limit: "maxAgents", ..
            } => ApiError::new(StatusCode::CONFLICT, "max_agents_exceeded", e.to_string()),
            DataError::LimitExceeded { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "max_concurrent_calls_exceeded",
                e.to_string(),
            ),
            // The body is valid; the tenant's state refuses it.
            DataError::UnknownReference(what) => ApiError::new(
                StatusCode::CONFLICT,
                if what == "agent" {
                    "agent_not_found"
                } else {
                    "not_found"
                },
                format!("no such {what} in this tenant"),
            ),
            DataError::FeatureDisabled(_) => {
                ApiError::new(StatusCode::CONFLICT, "feature_disabled", e.to_string())
            }
            DataError::InUse(_) => ApiError::new(StatusCode::CONFLICT, "in_use", e.to_string()),
            DataError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_server_unavailable",
                "the tenant's database is unavailable; retry shortly",
            )
            .with_retry_after(1)
            .with_source(e),
            DataError::Paused => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "tenant_writes_paused",
                "the tenant is being moved; writes resume in a moment",
            )
            .with_retry_after(1),
            DataError::Timeout => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "query_timeout",
                "the request ran past this tenant's statement timeout; retry, or narrow it",
            )
            .with_retry_after(1),
            // The operator must fix a grant; the client learns only that
            // the database cannot serve it (the cause goes to the log).
            DataError::Denied(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "tenant_database_unavailable",
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
            RouterError::NotFound => ApiError::not_found("tenant_not_found", "no such tenant"),
            RouterError::Suspended => ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant_suspended",
                "the tenant is suspended",
            ),
            RouterError::Deleted => ApiError::not_found("tenant_deleted", "the tenant is deleted"),
            RouterError::NotReady(_) => ApiError::new(
                StatusCode::CONFLICT,
                "tenant_not_ready",
                "the tenant is not ready",
            ),
            RouterError::ServerDown => unavailable(
                "database_server_unavailable",
                "the tenant's database server is down",
            ),
            RouterError::BudgetSpent => unavailable(
                "connection_budget_exhausted",
                "no database connection is free for this tenant; retry shortly",
            ),
            RouterError::ServerUnreachable(_) | RouterError::PoolClosed => unavailable(
                "database_server_unavailable",
                "the tenant's database is unreachable; retry shortly",
            )
            .with_source(e),
            RouterError::CatalogUnavailable(_) => unavailable(
                "catalog_unavailable",
                "the control plane cannot reach its catalog; retry shortly",
            )
            .with_source(e),
            RouterError::Lookup(_)
            | RouterError::Inconsistent(_)
            | RouterError::Credentials(_)
            | RouterError::PoolBuild(_) => ApiError::internal(e),
        }
    }
}
