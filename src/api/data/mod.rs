//! The tenant data plane: agents, calls, analytics and the audit log. Each
//! request runs in one transaction on the tenant's own database, as the
//! tenant's own role, with row-level security scoped to the caller.

pub(crate) mod agents;
pub(crate) mod calls;
mod context;
pub(crate) mod insights;

use actix_web::web;

pub use context::{TenantContext, SUBTENANT_HEADER, TENANT_HEADER};

use super::resource;

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
