//! `/v1/tenants`: the control-plane API of the tenant lifecycle. Every route
//! needs super_admin.

pub(crate) mod create;
pub(crate) mod lifecycle;
pub(crate) mod migrate;
pub(crate) mod read;
pub(crate) mod relocate;
// One tenant's revert (down migrations).
pub(crate) mod revert;
pub(crate) mod update;

use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpRequest};

use crate::api::http::{ApiError, ErrorCode};
use crate::domain::TenantId;

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
