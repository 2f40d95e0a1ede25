//! A tenant identity provider's errors, and the console sign-in's: each
//! variant's status and code, and its own `code()` the same.

use strum::EnumCount;

use super::service_codes::same;
use super::*;
use crate::auth::providers::{OutboundError, ProvidersError, SignInError};

fn providers_errors() -> Vec<(ProvidersError, u16, &'static str)> {
    let refused = OutboundError::Refused {
        host: "10.0.0.1".into(),
        addr: "10.0.0.1".parse().unwrap(),
        kind: "private",
    };
    vec![
        (ProvidersError::TenantNotFound, 404, "tenant_not_found"),
        (ProvidersError::NotFound, 404, "identity_provider_not_found"),
        (
            ProvidersError::Invalid("x".into()),
            422,
            "identity_provider_invalid",
        ),
        (
            ProvidersError::Refused(refused),
            422,
            "identity_provider_address_refused",
        ),
        (
            ProvidersError::Unreachable("x".into()),
            422,
            "identity_provider_unreachable",
        ),
        (ProvidersError::IssuerTaken, 409, "issuer_taken"),
        (
            ProvidersError::Inherited,
            409,
            "identity_provider_inherited",
        ),
        (
            ProvidersError::SubtenantsHaveOwn(2),
            409,
            "subtenant_providers_exist",
        ),
        (
            ProvidersError::Catalog(CatalogError::Unavailable(pool())),
            503,
            "catalog_unavailable",
        ),
    ]
}

fn sign_in_errors() -> Vec<(SignInError, u16, &'static str)> {
    vec![
        (SignInError::TenantNotFound, 404, "tenant_not_found"),
        (SignInError::NoClient, 404, "identity_provider_not_found"),
        (SignInError::Mismatch, 403, "sign_in_failed"),
        (
            SignInError::Denied("access_denied".into()),
            403,
            "sign_in_failed",
        ),
        (SignInError::Provider("x".into()), 502, "sign_in_failed"),
        (
            SignInError::Catalog(CatalogError::Unavailable(pool())),
            503,
            "catalog_unavailable",
        ),
    ]
}

#[test]
fn every_identity_provider_and_sign_in_error_answers_its_pinned_status_and_its_own_code() {
    check(providers_errors(), ProvidersError::COUNT);
    check(sign_in_errors(), SignInError::COUNT);
    let providers = providers_errors().into_iter().map(|(e, ..)| e).collect();
    same(providers, ProvidersError::COUNT, ProvidersError::code);
    let sign_in = sign_in_errors().into_iter().map(|(e, ..)| e).collect();
    same(sign_in, SignInError::COUNT, SignInError::code);
}
