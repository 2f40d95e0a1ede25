//! `/v1/tenants/{id}/domains`: a tenant's custom domains (a request whose
//! `Host` is one goes to that tenant). super_admin adds them; the tenant's
//! own tenant_admin may list them.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::api::control::tenants::TenantPath;
use crate::api::http::audited::actor;
use crate::api::http::AppState;
use crate::api::http::{ApiError, ErrorCode};
use crate::auth::{Action, Principal, Resource};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    /// A host name with at least two labels; requests whose `Host` is it go
    /// to this tenant. Case does not matter: it is stored in lowercase.
    #[schema(
        max_length = 253,
        pattern = "^([a-zA-Z0-9][a-zA-Z0-9-]{0,62}[.])+[a-zA-Z][a-zA-Z0-9-]{0,62}$"
    )]
    domain: String,
}

fn valid_domain(domain: &str) -> Option<String> {
    // Host names are case-insensitive: store the lowercase form.
    let d = domain.trim().to_ascii_lowercase();
    crate::domain::is_host_name(&d).then_some(d)
}

/// `POST /v1/tenants/{id}/domains`: requests whose Host is this domain go to the tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/domains", tag = "domains", request_body = AddDomain, params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 201, description = "The domain, registered")))]
pub async fn add_domain(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    tenant: TenantPath,
    body: crate::api::http::body::Json<AddDomain>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let domain = valid_domain(&body.domain).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            "domain: a host name",
        )
    })?;
    let domains = &state.services().domains;
    domains
        .add(&actor(&principal, &req), tenant.0, &domain)
        .await?;
    Ok(
        HttpResponse::Created()
            .json(serde_json::json!({ "tenant_id": tenant.0, "domain": domain })),
    )
}

/// `GET /v1/tenants/{id}/domains`
#[utoipa::path(get, path = "/v1/tenants/{id}/domains", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant's custom domains")))]
pub async fn list_domains(
    principal: Principal,
    state: web::Data<AppState>,
    tenant: TenantPath,
) -> Result<HttpResponse, ApiError> {
    // super_admin, or the tenant's own tenant_admin.
    crate::api::control::tenants::read::readable(&principal, &state, tenant.0).await?;
    let domains = state.services().domains.list(tenant.0).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "domains": domains })))
}
