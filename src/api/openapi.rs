//! `/openapi.json`: the API description, generated from the handlers'
//! `#[utoipa::path]` attributes and the request and response types.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api_keys, data, domains, health, migrations, servers, tenants};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tenant-plane",
        description = "Control plane and data plane for database-per-tenant PostgreSQL. Every non-2xx response has the body `ErrorEnvelope`."
    ),
    paths(
        health::healthz, health::readyz,
        data::agents::create, data::agents::list, data::agents::show, data::agents::update, data::agents::delete,
        data::calls::create, data::calls::list, data::calls::show, data::calls::update,
        data::insights::summary, data::insights::audit,
        tenants::create::create, tenants::create::create_subtenant,
        tenants::read::list, tenants::read::show, tenants::update::update,
        tenants::lifecycle::suspend, tenants::lifecycle::resume, tenants::lifecycle::restore, tenants::lifecycle::delete,
        api_keys::create, api_keys::list, api_keys::revoke, domains::add_domain, domains::list_domains,
        migrations::start_run, migrations::show_run, migrations::resume_run, migrations::versions, tenants::migrate::migrate_tenant,
        servers::list, servers::show, servers::register, servers::update, servers::drain, tenants::relocate::move_tenant,
        super::metrics::render, openapi_json,
    ),
    components(schemas(super::ErrorEnvelope, super::ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT, or a tenant API key tpk_…")
                    .build(),
            ),
        );
    }
}

/// `GET /openapi.json`
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "This document"), (status = "4XX", description = "Refused; the error envelope names why", body = super::ErrorEnvelope)))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
