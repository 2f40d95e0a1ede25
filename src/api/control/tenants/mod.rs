//! `/v1/tenants`: the control-plane API of the tenant lifecycle. Every route
//! needs super_admin.

pub(crate) mod create;
pub(crate) mod lifecycle;
pub(crate) mod migrate;
pub(crate) mod read;
pub(crate) mod relocate;
pub(crate) mod update;

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::api::{resource, ApiError, ErrorCode};
use crate::domain::TenantId;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/v1/tenants")
            .route(web::post().to(create::create))
            .route(web::get().to(read::list)),
    )
    .service(
        resource("/v1/tenants/{id}")
            .route(web::get().to(read::show))
            .route(web::patch().to(update::update))
            .route(web::delete().to(lifecycle::delete)),
    )
    .service(
        resource("/v1/tenants/{id}/subtenants").route(web::post().to(create::create_subtenant)),
    )
    .service(resource("/v1/tenants/{id}/suspend").route(web::post().to(lifecycle::suspend)))
    .service(resource("/v1/tenants/{id}/resume").route(web::post().to(lifecycle::resume)))
    .service(resource("/v1/tenants/{id}/restore").route(web::post().to(lifecycle::restore)))
    .service(resource("/v1/tenants/{id}/move").route(web::post().to(relocate::move_tenant)))
    .service(
        resource("/v1/tenants/{id}/migrations")
            .route(web::post().to(migrate::migrate_tenant))
            .route(web::get().to(migrate::history)),
    );
}

/// The `{id}` of a tenant route, parsed before any handler runs.
pub struct TenantPath(pub TenantId);

impl FromRequest for TenantPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = req
            .match_info()
            .get("id")
            .and_then(|raw| raw.parse::<TenantId>().ok())
            .map(TenantPath)
            .ok_or_else(|| {
                ApiError::bad_request(ErrorCode::InvalidTenantId, "the tenant id must be a UUID")
            });
        ready(parsed)
    }
}
