//! The smaller services' errors as responses: a tenant's API keys, custom
//! domains, onboarding, and cancelling an operation.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};
use crate::custom_domains::CustomDomainsError;
use crate::onboarding::OnboardingError;
use crate::operations::OperationsError;
use crate::tenant_keys::TenantKeysError;

impl From<TenantKeysError> for ApiError {
    fn from(e: TenantKeysError) -> Self {
        match e {
            TenantKeysError::TenantNotFound => {
                ApiError::not_found(ErrorCode::TenantNotFound, "no such tenant")
            }
            TenantKeysError::NotRoot => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotARootTenant,
                "API keys belong to a root tenant; bind one to a subtenant with subtenant_id",
            ),
            TenantKeysError::SubtenantNotFound => ApiError::not_found(
                ErrorCode::SubtenantNotFound,
                "no such subtenant of this tenant",
            ),
            TenantKeysError::KeyNotFound => {
                ApiError::not_found(ErrorCode::ApiKeyNotFound, "no such live API key")
            }
            TenantKeysError::Auth(e) => e.into(),
            TenantKeysError::Catalog(e) => e.into(),
        }
    }
}

impl From<OnboardingError> for ApiError {
    fn from(e: OnboardingError) -> Self {
        match e {
            OnboardingError::Tenant(e) => e.into(),
            OnboardingError::AdminKey(e) => e.into(),
        }
    }
}

impl From<CustomDomainsError> for ApiError {
    fn from(e: CustomDomainsError) -> Self {
        match e {
            CustomDomainsError::TenantNotFound => {
                ApiError::not_found(ErrorCode::TenantNotFound, "no such tenant")
            }
            CustomDomainsError::Taken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::DomainTaken,
                "another tenant has this domain",
            ),
            CustomDomainsError::Catalog(e) => e.into(),
        }
    }
}

impl From<OperationsError> for ApiError {
    fn from(e: OperationsError) -> Self {
        match e {
            OperationsError::NotFound => {
                ApiError::not_found(ErrorCode::OperationNotFound, "no such operation")
            }
            OperationsError::NotCancellable { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotCancellable,
                e.to_string(),
            ),
            OperationsError::Catalog(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthError;

    fn answer(e: impl Into<ApiError>) -> (u16, &'static str) {
        let e = e.into();
        (e.status().as_u16(), e.code().as_str())
    }

    #[test]
    fn key_and_domain_refusals_keep_their_status_and_code() {
        use CustomDomainsError as D;
        use TenantKeysError as K;
        assert_eq!(answer(K::TenantNotFound), (404, "tenant_not_found"));
        assert_eq!(answer(K::NotRoot), (409, "not_a_root_tenant"));
        assert_eq!(answer(K::SubtenantNotFound), (404, "subtenant_not_found"));
        assert_eq!(answer(K::KeyNotFound), (404, "api_key_not_found"));
        assert_eq!(
            answer(K::Auth(AuthError::Escalation("x"))),
            (403, "grant_exceeds_caller")
        );
        assert_eq!(
            answer(K::Auth(AuthError::InvalidCredential("x"))),
            (401, "invalid_token")
        );
        assert_eq!(answer(D::TenantNotFound), (404, "tenant_not_found"));
        assert_eq!(answer(D::Taken), (409, "domain_taken"));
        use OperationsError as O;
        assert_eq!(answer(O::NotFound), (404, "operation_not_found"));
        let refused = O::NotCancellable {
            kind: "create".into(),
            state: "succeeded",
        };
        assert_eq!(answer(refused), (409, "not_cancellable"));
    }
}
