//! Tenant identity providers' errors as responses: setting one, and the
//! console's sign-in through one.

use actix_web::http::StatusCode;

use super::ApiError;
use crate::auth::providers::{ProvidersError, SignInError};

impl From<ProvidersError> for ApiError {
    fn from(e: ProvidersError) -> Self {
        let code = e.code();
        match e {
            ProvidersError::TenantNotFound => ApiError::not_found(code, "no such tenant"),
            ProvidersError::NotFound => {
                ApiError::not_found(code, "the tenant has no identity provider")
            }
            ProvidersError::Invalid(_) | ProvidersError::Refused(_) => {
                let message = e.to_string();
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            ProvidersError::Unreachable(_) => {
                let message = e.to_string();
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            ProvidersError::IssuerTaken
            | ProvidersError::Inherited
            | ProvidersError::SubtenantsHaveOwn(_) => {
                let message = e.to_string();
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            ProvidersError::Catalog(e) => e.into(),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        let code = e.code();
        match e {
            SignInError::TenantNotFound => ApiError::not_found(code, "no such tenant"),
            SignInError::NoClient => ApiError::not_found(code, e.to_string()),
            // Not the request's fault but the browser's state: no sign-in
            // of its own is waiting, or the provider refused it.
            SignInError::Mismatch | SignInError::Denied(_) => {
                ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
            }
            // The provider's own words go to the log, not to the browser.
            SignInError::Provider(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                code,
                "the identity provider did not complete the sign-in; try again",
            )
            .with_source(e),
            SignInError::Catalog(e) => e.into(),
        }
    }
}
