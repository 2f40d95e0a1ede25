//! The tenant data plane: agents, calls, analytics and the audit log. Each
//! request runs in one transaction on the tenant's own database, as the
//! tenant's own role, with row-level security scoped to the caller.

pub(crate) mod agents;
pub(crate) mod calls;
mod context;
pub(crate) mod insights;

use actix_web::http::StatusCode;
use actix_web::web;

pub use context::{TenantContext, SUBTENANT_HEADER, TENANT_HEADER};

use super::{resource, ApiError};
use crate::data::DataError;
use crate::router::{RouteError, RouterError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/v1/agents")
            .route(web::post().to(agents::create))
            .route(web::get().to(agents::list)),
    )
    .service(
        resource("/v1/agents/{id}")
            .route(web::get().to(agents::show))
            .route(web::patch().to(agents::update))
            .route(web::delete().to(agents::delete)),
    )
    .service(
        resource("/v1/calls")
            .route(web::post().to(calls::create))
            .route(web::get().to(calls::list)),
    )
    .service(
        resource("/v1/calls/{id}")
            .route(web::get().to(calls::show))
            .route(web::patch().to(calls::update)),
    )
    .service(resource("/v1/analytics/summary").route(web::get().to(insights::summary)))
    .service(resource("/v1/audit").route(web::get().to(insights::audit)));
}

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
            DataError::FeatureDisabled(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "feature_disabled",
                e.to_string(),
            ),
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
            RouterError::Route(RouteError::NotFound) => {
                ApiError::not_found("tenant_not_found", "no such tenant")
            }
            RouterError::Route(RouteError::Suspended) => ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant_suspended",
                "the tenant is suspended",
            ),
            RouterError::Route(RouteError::Deleted) => {
                ApiError::not_found("tenant_deleted", "the tenant is deleted")
            }
            RouterError::Route(RouteError::NotReady(_)) => ApiError::new(
                StatusCode::CONFLICT,
                "tenant_not_ready",
                "the tenant is not ready",
            ),
            RouterError::Route(RouteError::ServerDown) => unavailable(
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
            RouterError::Route(RouteError::CatalogUnavailable) => unavailable(
                "catalog_unavailable",
                "the control plane cannot reach its catalog; retry shortly",
            ),
            RouterError::Route(RouteError::Internal(_)) => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future a two-argument handler returns.
    fn future_size<A, B, F, Fut>(_: F) -> usize
    where
        F: Fn(A, B) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Futures move by copy, each await and each box copying the whole
    /// state: a handler that embeds the pool's connect path or four query
    /// futures copies tens of kilobytes per request (it did: 7 KiB each,
    /// memmove was the top item of the profile). The rare paths are boxed.
    #[test]
    fn data_plane_handler_futures_stay_small() {
        for (name, size) in [
            ("GET /v1/agents/{id}", future_size(super::agents::show)),
            ("GET /v1/agents", future_size(super::agents::list)),
            ("POST /v1/agents", future_size(super::agents::create)),
            ("GET /v1/calls/{id}", future_size(super::calls::show)),
            ("GET /v1/calls", future_size(super::calls::list)),
            ("POST /v1/calls", future_size(super::calls::create)),
        ] {
            assert!(size <= 4096, "{name}: {size} bytes");
        }
    }
}
