//! The error sets a route declares, each a list of (status, code) pairs.
//! A route names the sets it can answer (`AUTH`, `BODY`, `DATA`, …) in its
//! one registration (`api::routes`); the spec's error responses, each
//! operation's `x-error-codes` and its `bearer` security are written from
//! them. The spec-driven tests hold the server to them: a (status, code)
//! seen that is not declared fails them. Codes are `ErrorCode` variants, so
//! a code the server cannot answer cannot be declared.

use crate::api::http::ErrorCode::{self, *};

/// (HTTP status, error code) pairs.
pub type Codes = &'static [(u16, ErrorCode)];

/// Any route behind a credential. An operation that declares it takes the
/// `bearer` security, unless its attribute states its own.
pub const AUTH: Codes = &[
    (401, MissingCredentials),
    (401, InvalidToken),
    (401, TokenExpired),
    (403, Forbidden),
    (403, CsrfFailed),
    // A token of a tenant's own identity provider (`auth::providers`).
    (403, CrossTenant),
    (403, NoRoleMapped),
    (403, ClaimsRefused),
    (429, TooManyDenials),
    (500, InternalError),
    (503, CatalogUnavailable),
    (503, IdentityProviderUnavailable),
];
/// A JSON request body.
pub const BODY: Codes = &[
    (400, MalformedJson),
    (400, InvalidBody),
    (413, PayloadTooLarge),
    (415, UnsupportedMediaType),
    (422, InvalidBody),
    (422, InvalidField),
];
pub const QUERY: Codes = &[(400, InvalidQuery)];
/// A UUID path segment other than a tenant's.
pub const PATH: Codes = &[(400, InvalidPath)];
/// `/v1/tenants/{id}/…`
pub const TENANT: Codes = &[(400, InvalidTenantId), (404, TenantNotFound)];
/// A tenant operation that runs under the tenant's operation lock.
pub const LOCKED: Codes = &[
    (409, TenantBusy),
    (409, InvalidState),
    (503, OperationAbandoned),
    (503, DatabaseServerUnavailable),
];
/// Routing a data-plane request to its tenant's database. An operation
/// that declares it is the data plane's: it takes the tenant headers.
pub const DATA: Codes = &[
    (400, InvalidTenantId),
    (400, TenantRequired),
    (403, CrossTenant),
    (403, TenantSuspended),
    (404, TenantNotFound),
    (404, TenantDeleted),
    (409, TenantNotReady),
    (429, RateLimited),
    (503, DatabaseServerUnavailable),
    (503, ConnectionBudgetExhausted),
    (503, QueryTimeout),
    (503, TenantDatabaseUnavailable),
];
/// A data-plane write: a move or restore pauses them, and a tenant over a
/// quota is refused them.
pub const WRITES: Codes = &[(503, TenantWritesPaused), (429, QuotaExceeded)];

/// Whether `errors` holds the set `set` (compared by content, so a set
/// named in a registration is found whatever copy of it the line holds).
pub(super) fn declares(errors: &[Codes], set: Codes) -> bool {
    errors.contains(&set)
}

/// The declared errors, by status, each code once, in order.
pub fn by_status(errors: &[Codes]) -> std::collections::BTreeMap<u16, Vec<ErrorCode>> {
    let mut out = std::collections::BTreeMap::<u16, Vec<ErrorCode>>::new();
    for (status, code) in errors.iter().flat_map(|c| c.iter()) {
        let codes = out.entry(*status).or_default();
        if !codes.contains(code) {
            codes.push(*code);
        }
    }
    out
}
