use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::http::audited::actor;
use crate::api::http::idempotency::{idempotent, idempotent_stored_as};
use crate::api::http::{ApiError, AppState, ErrorCode};
use crate::auth::{Action, Principal, Resource};
use crate::domain::{FirstAdmin, Slug, TenantName, Tier};
use crate::onboarding::Onboarded;
use crate::tenant_config::TenantConfig;
use crate::tenants::{NewSubtenantInput, NewTenantInput};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    name: TenantName,
    slug: Slug,
    #[serde(default)]
    tier: Tier,
    #[serde(default)]
    #[schema(value_type = Option<TenantConfig>)]
    settings: Option<serde_json::Value>,
    /// The tenant's first admin: the answer then holds, this once, a
    /// `tenant_admin` API key for them (`admin_key.key`).
    #[serde(default)]
    admin: Option<FirstAdmin>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubtenant {
    name: TenantName,
    slug: Slug,
    /// Within the parent's: a wider limit or a feature the parent lacks is
    /// refused with 409 `exceeds_parent`.
    #[serde(default)]
    #[schema(value_type = Option<TenantConfig>)]
    settings: Option<serde_json::Value>,
}

impl CreateTenant {
    fn into_input(self) -> Result<(NewTenantInput, Option<FirstAdmin>), ApiError> {
        let input = NewTenantInput {
            name: self.name,
            slug: self.slug,
            tier: self.tier,
            settings: parse_settings(self.settings)?,
        };
        Ok((input, self.admin))
    }
}

impl CreateSubtenant {
    fn into_input(self) -> Result<NewSubtenantInput, ApiError> {
        Ok(NewSubtenantInput {
            name: self.name,
            slug: self.slug,
            settings: parse_settings(self.settings)?,
        })
    }
}

fn parse_settings(settings: Option<serde_json::Value>) -> Result<TenantConfig, ApiError> {
    match settings {
        None => Ok(TenantConfig::default()),
        Some(value) => TenantConfig::parse(value).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                e.to_string(),
            )
        }),
    }
}

/// `POST /v1/tenants`: a tenant with a database of its own, and with
/// `admin`, its first admin's `tenant_admin` key. With an
/// `Idempotency-Key`, a retry returns the first response (without the
/// key's secret).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant, params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer: 1 to 255 visible ASCII characters", min_length = 1, max_length = 255, pattern = "^[!-~]+$")), responses((status = 201, description = "The new tenant, active (with `admin`, its first admin's key)", body = Onboarded, headers(("Location" = String, description = "The new tenant: /v1/tenants/{id}")))))]
pub async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let raw = body.into_inner();
    let input: CreateTenant = crate::api::http::body::parse_checked(raw.clone())?;
    let (input, admin) = input.into_input()?;
    let stored = Onboarded::without_secret;
    idempotent_stored_as(&state, &principal, &req, &raw, stored, || async {
        let actor = actor(&principal, &req);
        let made = state
            .services()
            .onboarding
            .create(&actor, input, admin)
            .await?;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(made).expect("the answer serialises"),
        ))
    })
    .await
}

/// `POST /v1/tenants/{id}/subtenants`: a subtenant in its root tenant's database.
#[utoipa::path(post, path = "/v1/tenants/{id}/subtenants", tag = "tenants", request_body = CreateSubtenant, params(("id" = uuid::Uuid, Path, description = "Parent tenant id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer: 1 to 255 visible ASCII characters", min_length = 1, max_length = 255, pattern = "^[!-~]+$")), responses((status = 201, description = "The new subtenant", body = crate::tenants::TenantView, headers(("Location" = String, description = "The new tenant: /v1/tenants/{id}")))))]
pub async fn create_subtenant(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    parent: TenantPath,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Write)?;
    let raw = body.into_inner();
    let input: CreateSubtenant = crate::api::http::body::parse_checked(raw.clone())?;
    let input = input.into_input()?;
    idempotent(&state, &principal, &req, &raw, || async {
        let actor = actor(&principal, &req);
        let lifecycle = &state.services().lifecycle;
        let view = lifecycle.create_subtenant(&actor, parent.0, input).await?;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(view).expect("view serialises"),
        ))
    })
    .await
}
