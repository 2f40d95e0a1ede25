//! `POST /v1/migrations/lint`: the lint of the pending tenant migrations,
//! on demand (the same report `tenant-plane migrate --lint` prints).
//! super_admin (Migrations Read): it reads, and changes nothing.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::api::http::ApiError;
use crate::api::http::AppState;
use crate::auth::{Action, Principal, Resource};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LintRequest {
    /// Lint the versions above this one; the lowest tenant version when
    /// absent (0 when there is no tenant).
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_i32")]
    #[schema(minimum = 0, maximum = 2147483647)]
    from_version: Option<i32>,
    /// Up to and including this one; the newest when absent.
    #[serde(default, deserialize_with = "crate::api::http::wire::opt_i32")]
    #[schema(minimum = 0, maximum = 2147483647)]
    target_version: Option<i32>,
}

/// `POST /v1/migrations/lint`: lint the pending migrations.
#[utoipa::path(post, path = "/v1/migrations/lint", tag = "migrations", request_body = LintRequest, responses((status = 200, description = "The findings; `ok` when none is an error", body = crate::fleet::LintReport)))]
pub async fn lint(
    principal: Principal,
    state: web::Data<AppState>,
    body: crate::api::http::body::Json<LintRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Migrations, Action::Read)?;
    let body = body.into_inner();
    let report = state
        .fleet()
        .lint(body.from_version, body.target_version)
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
