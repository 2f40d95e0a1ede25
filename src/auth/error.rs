use thiserror::Error;

use super::{Action, Resource};

/// Why a request was not authenticated or not allowed. The client only learns
/// the category; the detail goes to the log.
#[derive(Debug, Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum AuthError {
    #[error("no bearer credentials")]
    MissingCredentials,
    #[error("invalid credential: {0}")]
    InvalidCredential(&'static str),
    #[error("the token does not verify")]
    InvalidToken(#[source] jsonwebtoken::errors::Error),
    #[error("token expired")]
    Expired,
    #[error("not allowed to {action:?} {resource:?}")]
    Forbidden { resource: Resource, action: Action },
    /// Refused by the reach rule (`reach`): another tenant's data.
    #[error("cross-tenant request: {0}")]
    CrossTenant(&'static str),
    #[error("refused a grant: {0}")]
    Escalation(&'static str),
    #[error("credential lookup failed")]
    Lookup(#[source] crate::catalog::CatalogError),
    #[error("credential lookups are saturated or failed; the cause is logged")]
    Busy,
    #[error("a console session's unsafe request without its CSRF token")]
    Csrf,
    /// A tenant provider's token whose groups map to no role.
    #[error("the token's claims map to no role")]
    NoRoleMapped,
    /// A tenant provider's token that claims what no provider may grant.
    #[error("refused claims: {0}")]
    ClaimsRefused(&'static str),
    /// A tenant provider's keys expired and it cannot be reached.
    #[error("the tenant's identity provider cannot be reached")]
    ProviderUnavailable,
    #[error("unusable signing key")]
    Key(#[source] jsonwebtoken::errors::Error),
}
