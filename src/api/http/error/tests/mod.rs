//! Every variant of every module error, with the status and code it
//! answers. A new variant fails `every_variant_is_in_the_table` until it has
//! a row here, so no error reaches a client unmapped by accident.

use std::collections::HashSet;
use std::mem::discriminant;

use actix_web::ResponseError;
use strum::EnumCount;

mod data_plane;
mod nested;
mod nouns;
mod service_codes;
// Tenant identity providers: setting one, and the console's sign-in.
mod identity;

use super::*;
use crate::auth::{Action, AuthError, Resource};
use crate::backup::BackupError;
use crate::crypto::CryptoError;
use crate::domain::TenantStatus;
use crate::fleet::FleetError;
use crate::migrator::MigrateError;
use crate::servers::ServersError;
use crate::services::CatalogError;
use crate::services::ProvisionError;
use crate::tenant_config::FieldError;
use crate::tenants::{BackupsError, PlacementError, TenantsError};

/// A real `tokio_postgres::Error` (it has no public constructor).
pub(super) fn pg() -> tokio_postgres::Error {
    "port=not-a-number"
        .parse::<tokio_postgres::Config>()
        .unwrap_err()
}

pub(super) fn pool() -> deadpool_postgres::PoolError {
    deadpool_postgres::PoolError::Closed
}

pub(super) fn refinery() -> refinery::Error {
    refinery::Migration::unapplied("not a migration name", "").unwrap_err()
}

pub(super) fn jwt() -> jsonwebtoken::errors::Error {
    jsonwebtoken::errors::ErrorKind::InvalidToken.into()
}

pub(super) fn io() -> std::io::Error {
    std::io::Error::other("disk")
}

/// Checks each row's status and code, and that the rows name as many
/// distinct variants as the enum has.
pub(super) fn check<E>(rows: Vec<(E, u16, &str)>, variants: usize)
where
    E: Into<ApiError> + std::fmt::Debug,
{
    let mut seen = HashSet::new();
    for (error, status, code) in rows {
        seen.insert(discriminant(&error));
        let shown = format!("{error:?}");
        let api: ApiError = error.into();
        assert_eq!(api.status().as_u16(), status, "{shown}");
        assert_eq!(api.code().as_str(), code, "{shown}");
    }
    assert_eq!(
        seen.len(),
        variants,
        "{} has variants that are not in the table",
        std::any::type_name::<E>()
    );
}

/// Rows of an error that only reaches clients inside another one.
pub(super) fn check_nested<E, O>(rows: Vec<(E, u16, &str)>, variants: usize, wrap: impl Fn(E) -> O)
where
    O: Into<ApiError> + std::fmt::Debug,
{
    let mut seen = HashSet::new();
    let wrapped = rows
        .into_iter()
        .map(|(error, status, code)| {
            seen.insert(discriminant(&error));
            (wrap(error), status, code)
        })
        .collect::<Vec<_>>();
    assert_eq!(
        seen.len(),
        variants,
        "{} has variants that are not in the table",
        std::any::type_name::<E>()
    );
    for (error, status, code) in wrapped {
        let shown = format!("{error:?}");
        let api: ApiError = error.into();
        assert_eq!(api.status().as_u16(), status, "{shown}");
        assert_eq!(api.code().as_str(), code, "{shown}");
    }
}

#[test]
fn every_variant_of_every_module_error_answers_its_pinned_status_and_code() {
    check(
        vec![
            (AuthError::MissingCredentials, 401, "missing_credentials"),
            (AuthError::InvalidCredential("x"), 401, "invalid_token"),
            (AuthError::InvalidToken(jwt()), 401, "invalid_token"),
            (AuthError::Expired, 401, "token_expired"),
            (AuthError::Escalation("x"), 403, "grant_exceeds_caller"),
            (AuthError::CrossTenant("x"), 403, "cross_tenant"),
            (AuthError::Csrf, 403, "csrf_failed"),
            (
                AuthError::Forbidden {
                    resource: Resource::Tenants,
                    action: Action::Read,
                },
                403,
                "forbidden",
            ),
            (
                AuthError::Lookup(CatalogError::Unavailable(pool())),
                503,
                "catalog_unavailable",
            ),
            (AuthError::Busy, 503, "catalog_unavailable"),
            (AuthError::Key(jwt()), 500, "internal_error"),
            (AuthError::NoRoleMapped, 403, "no_role_mapped"),
            (AuthError::ClaimsRefused("x"), 403, "claims_refused"),
            (
                AuthError::ProviderUnavailable,
                503,
                "identity_provider_unavailable",
            ),
        ],
        AuthError::COUNT,
    );
    check(
        vec![
            (
                CatalogError::Unavailable(pool()),
                503,
                "catalog_unavailable",
            ),
            (CatalogError::Connect(pg()), 503, "catalog_unavailable"),
            (CatalogError::Query(pg()), 500, "internal_error"),
            (CatalogError::Lost(pg()), 503, "catalog_unavailable"),
            (CatalogError::Schema(refinery()), 500, "internal_error"),
            (CatalogError::SlugTaken, 409, "slug_taken"),
            (CatalogError::TenantBusy, 409, "tenant_busy"),
            (CatalogError::ParentMissing, 404, "tenant_not_found"),
            (CatalogError::TenantMissing, 404, "tenant_not_found"),
            (CatalogError::Fenced, 503, "operation_abandoned"),
            (CatalogError::NoLease, 503, "catalog_unavailable"),
            (CatalogError::ApiKeyLimit(3), 409, "api_key_limit"),
            (CatalogError::ServerExists, 409, "server_exists"),
            (CatalogError::ServerNotActive, 409, "server_not_active"),
            (
                CatalogError::MigrationChecksumMismatch {
                    version: 2,
                    name: "agent_language".into(),
                    applied: "0123456789abcdef".into(),
                    found: "fedcba9876543210".into(),
                },
                409,
                "migration_checksum_mismatch",
            ),
            (
                CatalogError::Pool(deadpool_postgres::BuildError::NoRuntimeSpecified),
                500,
                "internal_error",
            ),
            (
                CatalogError::Dsn(crate::pg::PgError::SslMode("x".into())),
                500,
                "internal_error",
            ),
        ],
        CatalogError::COUNT,
    );
    check(
        vec![
            (TenantsError::NotFound, 404, "tenant_not_found"),
            (TenantsError::SlugTaken, 409, "slug_taken"),
            (TenantsError::Busy, 409, "tenant_busy"),
            (
                TenantsError::InvalidState {
                    action: "resume",
                    status: TenantStatus::Active,
                },
                409,
                "invalid_state",
            ),
            (
                TenantsError::InvalidField(FieldError {
                    field: "features.maxAgents".into(),
                    reason: "too large".into(),
                }),
                422,
                "invalid_field",
            ),
            (TenantsError::TooDeep, 409, "subtenant_depth"),
            (
                TenantsError::ExceedsParent(FieldError {
                    field: "features.maxAgents".into(),
                    reason: "above the parent's".into(),
                }),
                409,
                "exceeds_parent",
            ),
            (TenantsError::NotRoot("x"), 409, "not_a_root_tenant"),
            (TenantsError::ParentNotActive, 409, "parent_not_active"),
            (TenantsError::NoServer, 503, "no_server_available"),
            (TenantsError::NotDeleted, 409, "tenant_not_deleted"),
            (TenantsError::Drifted("x".into()), 409, "tenant_drifted"),
            (
                TenantsError::Abandoned(crate::operations::Abandoned),
                503,
                "operation_abandoned",
            ),
            (TenantsError::ServerNotActive, 409, "server_not_active"),
            (TenantsError::Inconsistent("x"), 500, "internal_error"),
            (
                TenantsError::Catalog(CatalogError::Query(pg())),
                500,
                "internal_error",
            ),
            (
                TenantsError::Provision(ProvisionError::NoCredentials("s1".into())),
                500,
                "internal_error",
            ),
            (
                TenantsError::Migrate(MigrateError::Query(pg())),
                500,
                "internal_error",
            ),
            (
                TenantsError::Crypto(CryptoError::Open),
                500,
                "internal_error",
            ),
            (
                TenantsError::Placement(PlacementError::SameServer),
                409,
                "same_server",
            ),
            (
                TenantsError::Backups(BackupsError::Backup(BackupError::Unsealed)),
                409,
                "backup_refused",
            ),
        ],
        TenantsError::COUNT,
    );
    check(
        vec![
            (ServersError::NotFound, 404, "server_not_found"),
            (ServersError::InvalidDsn("x".into()), 422, "invalid_dsn"),
            (
                ServersError::Unusable {
                    reason: "cannot connect",
                    source: Some(Box::new(io())),
                },
                409,
                "server_unusable",
            ),
            (
                ServersError::ArchiveUnreadable("no stanza".into()),
                409,
                "wal_archive_unreadable",
            ),
            (
                ServersError::Catalog(CatalogError::ServerExists),
                409,
                "server_exists",
            ),
            (
                ServersError::Provision(ProvisionError::Sql(pg())),
                500,
                "internal_error",
            ),
        ],
        ServersError::COUNT,
    );
    check(
        vec![
            (FleetError::NotFound, 404, "run_not_found"),
            (FleetError::RevertNotFound, 404, "revert_not_found"),
            (
                FleetError::NotResumable("running".into()),
                409,
                "run_not_resumable",
            ),
            (FleetError::BadConcurrency, 422, "invalid_field"),
            (
                FleetError::Catalog(CatalogError::Unavailable(pool())),
                503,
                "catalog_unavailable",
            ),
            (
                FleetError::Provision(ProvisionError::Sql(pg())),
                500,
                "internal_error",
            ),
            (
                FleetError::Abandoned(crate::operations::Abandoned),
                503,
                "operation_abandoned",
            ),
            (FleetError::LintFailed(vec![]), 422, "lint_failed"),
            (FleetError::UnknownRule("x".into()), 422, "invalid_field"),
            // Revert.
            (
                FleetError::StillRunning("running".into()),
                409,
                "run_not_resumable",
            ),
            (
                FleetError::Revert(MigrateError::NoDownMigration { version: 1 }),
                409,
                "no_down_migration",
            ),
        ],
        FleetError::COUNT,
    );
}

#[test]
fn a_server_error_keeps_its_cause_chain_for_the_log_and_out_of_the_body() {
    let cause = CatalogError::Query(pg());
    let error = ApiError::from(TenantsError::Catalog(cause));
    let logged = format!("{:#}", error.source.as_ref().expect("a source"));
    assert!(logged.contains("catalog query failed"), "{logged}");
    assert!(
        logged.contains("port"),
        "the cause's cause is kept: {logged}"
    );
    let body = error_body(&error);
    assert!(!body.contains("port"), "{body}");
}

#[test]
fn internal_errors_hide_their_cause_from_the_client() {
    let error = ApiError::internal(anyhow::anyhow!("password=hunter2 at 10.0.0.7"));
    let text = error_body(&error);
    assert!(
        !text.contains("hunter2") && !text.contains("10.0.0.7"),
        "{text}"
    );
    let envelope: ErrorEnvelope = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope.error.code, "internal_error");
}

fn error_body(error: &ApiError) -> String {
    let response = error.error_response();
    let body = actix_web::body::to_bytes(response.into_body());
    let body = futures_util::FutureExt::now_or_never(body)
        .unwrap()
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}
