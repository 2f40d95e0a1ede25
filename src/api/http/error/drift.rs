//! Drift's refusals and failures (drift plumbing): a one-tenant migration
//! of a drifted tenant (409 `tenant_drifted`), and a scan's or a drift
//! read's errors, each with the code the service records (a tenant that
//! cannot be checked is recorded `unknown`, never an error).

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};
use crate::drift::ScanError;
use crate::tenants::TenantsError;

pub(super) fn tenant_drifted(e: &TenantsError) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::TenantDrifted,
        e.to_string(),
    )
}

impl From<ScanError> for ApiError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::TenantNotFound => TenantsError::NotFound.into(),
            ScanError::NotRoot => {
                TenantsError::NotRoot("a subtenant shares its parent's database; check the parent")
                    .into()
            }
            ScanError::Catalog(inner) => inner.into(),
            ScanError::Abandoned(inner) => TenantsError::Abandoned(inner).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use strum::EnumCount;

    use super::*;
    use crate::services::CatalogError;

    /// Every variant answers its pinned status and code, and that code is
    /// the one a failed scan records (`ScanError::code`).
    #[test]
    fn every_scan_error_answers_its_pinned_status_and_the_code_a_failed_scan_records() {
        let rows = [
            (ScanError::TenantNotFound, 404, "tenant_not_found"),
            (ScanError::NotRoot, 409, "not_a_root_tenant"),
            (
                ScanError::Catalog(CatalogError::Fenced),
                503,
                "operation_abandoned",
            ),
            (
                ScanError::Abandoned(crate::operations::Abandoned),
                503,
                "operation_abandoned",
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for (error, status, code) in rows {
            seen.insert(std::mem::discriminant(&error));
            let own = error.code();
            let api = ApiError::from(error);
            assert_eq!((api.status().as_u16(), api.code().as_str()), (status, code));
            assert_eq!(api.code(), own);
        }
        assert_eq!(seen.len(), ScanError::COUNT);
        let tenant = TenantsError::Drifted("drifted at …".into());
        let api = tenant_drifted(&tenant);
        assert_eq!(
            (api.status().as_u16(), api.code()),
            (409, ErrorCode::TenantDrifted)
        );
    }
}
