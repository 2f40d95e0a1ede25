//! A failed operation records its error's own `code()` (`TenantsError`,
//! `CatalogError`, `FleetError`): the CLI and the reconciler, which never
//! build an `ApiError`, record it too. Here every variant's `code()` must
//! be the code the API answers with, so the two cannot drift.

use std::collections::HashSet;
use std::fmt::Debug;
use std::mem::discriminant;

use super::*;

pub(super) fn same<E>(rows: Vec<E>, variants: usize, code: fn(&E) -> ErrorCode)
where
    E: Into<ApiError> + Debug,
{
    let mut seen = HashSet::new();
    for error in rows {
        seen.insert(discriminant(&error));
        let (shown, own) = (format!("{error:?}"), code(&error));
        let api: ApiError = error.into();
        assert_eq!(api.code(), own, "{shown}");
    }
    assert_eq!(seen.len(), variants, "{}", std::any::type_name::<E>());
}

pub(super) fn catalog_errors() -> Vec<CatalogError> {
    vec![
        CatalogError::Unavailable(pool()),
        CatalogError::Connect(pg()),
        CatalogError::Query(pg()),
        CatalogError::Lost(pg()),
        CatalogError::Schema(refinery()),
        CatalogError::SlugTaken,
        CatalogError::TenantBusy,
        CatalogError::ParentMissing,
        CatalogError::TenantMissing,
        CatalogError::Fenced,
        CatalogError::NoLease,
        CatalogError::ApiKeyLimit(3),
        CatalogError::ServerExists,
        CatalogError::ServerNotActive,
        CatalogError::MigrationChecksumMismatch {
            version: 2,
            name: "agent_language".into(),
            applied: "0123456789abcdef".into(),
            found: "fedcba9876543210".into(),
        },
        CatalogError::Pool(deadpool_postgres::BuildError::NoRuntimeSpecified),
        CatalogError::Dsn(crate::pg::PgError::SslMode("x".into())),
    ]
}

/// Every variant of the archive's own error.
pub(super) fn backup_errors() -> [BackupError; 7] {
    [
        BackupError::Io(io()),
        BackupError::NotAnArchive("x".into()),
        BackupError::Corrupt("x".into()),
        BackupError::Unsealed,
        BackupError::UnsupportedFormat(9),
        BackupError::Location("x".into()),
        BackupError::Missing("x".into()),
    ]
}

pub(super) fn provision_errors() -> Vec<ProvisionError> {
    vec![
        ProvisionError::Connect {
            server: "s1".into(),
            source: pg(),
        },
        ProvisionError::Sql(pg()),
        ProvisionError::Migrate(MigrateError::Query(pg())),
        ProvisionError::NoCredentials("s1".into()),
        ProvisionError::Pool {
            server: "s1".into(),
            source: pool(),
        },
    ]
}

#[test]
fn every_operation_failure_code_is_the_code_the_api_answers_with() {
    same(catalog_errors(), CatalogError::COUNT, CatalogError::code);
    let field = || FieldError {
        field: "features.maxAgents".into(),
        reason: "too large".into(),
    };
    let mut tenants = vec![
        TenantsError::NotFound,
        TenantsError::SlugTaken,
        TenantsError::Busy,
        TenantsError::InvalidState {
            action: "resume",
            status: TenantStatus::Active,
        },
        TenantsError::InvalidField(field()),
        TenantsError::TooDeep,
        TenantsError::ExceedsParent(field()),
        TenantsError::NotRoot("x"),
        TenantsError::ParentNotActive,
        TenantsError::NoServer,
        TenantsError::NotDeleted,
        TenantsError::Drifted("x".into()),
        TenantsError::Abandoned(crate::operations::Abandoned),
        TenantsError::ServerNotActive,
        TenantsError::Inconsistent("x"),
        TenantsError::Migrate(MigrateError::Query(pg())),
        TenantsError::Crypto(CryptoError::Open),
        TenantsError::Placement(PlacementError::SameServer),
        TenantsError::Backups(BackupsError::Cancelled),
    ];
    tenants.extend(catalog_errors().into_iter().map(TenantsError::Catalog));
    tenants.extend(provision_errors().into_iter().map(TenantsError::Provision));
    same(tenants, TenantsError::COUNT, TenantsError::code);
    let mut fleet = vec![
        FleetError::NotFound,
        FleetError::RevertNotFound,
        FleetError::NotResumable("running".into()),
        FleetError::BadConcurrency,
        FleetError::Abandoned(crate::operations::Abandoned),
        FleetError::LintFailed(vec![]),
        FleetError::UnknownRule("x".into()),
        FleetError::StillRunning("running".into()),
        FleetError::Revert(MigrateError::NoDownMigration { version: 1 }),
    ];
    fleet.extend(catalog_errors().into_iter().map(FleetError::Catalog));
    fleet.extend(provision_errors().into_iter().map(FleetError::Provision));
    same(fleet, FleetError::COUNT, FleetError::code);
}
