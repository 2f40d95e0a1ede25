//! `/v1/tenants`: the control-plane API of the tenant lifecycle. Every route
//! needs super_admin.

pub(crate) mod create;
pub(crate) mod lifecycle;
pub(crate) mod read;
pub(crate) mod update;

use std::future::{ready, Ready};

use actix_web::http::StatusCode;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::{resource, ApiError};
use crate::domain::TenantId;
use crate::provisioner::ProvisionError;
use crate::tenants::TenantsError;

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
    .service(resource("/v1/tenants/{id}/restore").route(web::post().to(lifecycle::restore)));
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
                ApiError::bad_request("invalid_tenant_id", "the tenant id must be a UUID")
            });
        ready(parsed)
    }
}

impl From<TenantsError> for ApiError {
    fn from(e: TenantsError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            TenantsError::NotFound => ApiError::not_found("tenant_not_found", "no such tenant"),
            TenantsError::SlugTaken => ApiError::new(
                StatusCode::CONFLICT,
                "slug_taken",
                "another tenant has this slug",
            ),
            TenantsError::Busy => ApiError::new(
                StatusCode::CONFLICT,
                "tenant_busy",
                "another operation on this tenant is in progress; retry shortly",
            )
            .with_retry_after(1),
            TenantsError::InvalidState { .. } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_state", e.to_string())
            }
            TenantsError::InvalidField(ref field) => {
                ApiError::new(unprocessable, "invalid_field", field.to_string())
            }
            TenantsError::TooDeep => ApiError::new(
                unprocessable,
                "subtenant_depth",
                "tenants have two levels: a subtenant cannot have subtenants",
            ),
            TenantsError::ParentNotActive => ApiError::new(
                StatusCode::CONFLICT,
                "parent_not_active",
                "the parent tenant is not active",
            ),
            TenantsError::NoServer => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_server_available",
                "no active database server can take a new tenant",
            )
            .with_retry_after(30),
            TenantsError::ServerNotFound => {
                ApiError::not_found("server_not_found", "no such database server")
            }
            TenantsError::InvalidDsn(_) => {
                ApiError::new(unprocessable, "invalid_dsn", e.to_string())
            }
            TenantsError::ServerUnusable(_) => {
                ApiError::new(unprocessable, "server_unusable", e.to_string())
            }
            TenantsError::RestoreNeedsNew => {
                ApiError::new(StatusCode::CONFLICT, "restore_needs_new", e.to_string())
            }
            TenantsError::SameServer => ApiError::new(
                StatusCode::CONFLICT,
                "same_server",
                "the tenant is already on that server",
            ),
            TenantsError::ServerNotActive => ApiError::new(
                StatusCode::CONFLICT,
                "server_not_active",
                "the target server is draining or down",
            ),
            TenantsError::Copy(_) | TenantsError::Dump(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "move_failed",
                "the move failed before its cutover; the tenant stays on its server",
            )
            .with_retry_after(30)
            .with_source(e),
            TenantsError::Catalog(inner) => inner.into(),
            TenantsError::Provision(ProvisionError::Connect { .. }) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_server_unavailable",
                "the tenant's database server is unavailable; retry shortly",
            )
            .with_retry_after(1)
            .with_source(e),
            other => ApiError::internal(other),
        }
    }
}
