//! The tenant nouns' own errors (`KeysError`, `PlacementError`,
//! `BackupsError`): every variant's status and code, and each one's
//! `code()` the same as the API's, as `service_codes` holds for the others.

use strum::EnumCount;
use uuid::Uuid;

use super::service_codes::{backup_errors, catalog_errors, provision_errors, same};
use super::{check, io, pg, ApiError};
use crate::backup::BackupError;
use crate::crypto::CryptoError;
use crate::domain::TenantStatus;
use crate::dump::DumpError;
use crate::migrator::MigrateError;
use crate::services::CatalogError;
use crate::services::ProvisionError;
use crate::tenants::{BackupsError, KeysError, PlacementError, TenantsError};

fn keys_errors() -> Vec<(KeysError, u16, &'static str)> {
    vec![
        (
            KeysError::Catalog(CatalogError::Query(pg())),
            500,
            "internal_error",
        ),
        (
            KeysError::Unopenable {
                what: "tenant role password",
                id: Uuid::nil(),
            },
            500,
            "internal_error",
        ),
    ]
}

/// The rows of the failures every tenant noun's error shares
/// (`tenants::shared_failures`): the same answer whichever noun met them.
macro_rules! shared_rows {
    ($error:ident, $action:literal) => {
        vec![
            ($error::NotFound, 404, "tenant_not_found"),
            ($error::Busy, 409, "tenant_busy"),
            (
                $error::InvalidState {
                    action: $action,
                    status: TenantStatus::Failed,
                },
                409,
                "invalid_state",
            ),
            (
                $error::Abandoned(crate::operations::Abandoned),
                503,
                "operation_abandoned",
            ),
            ($error::Inconsistent("x"), 500, "internal_error"),
            (
                $error::Catalog(CatalogError::Query(pg())),
                500,
                "internal_error",
            ),
            (
                $error::Provision(ProvisionError::Connect {
                    server: "s1".into(),
                    source: pg(),
                }),
                503,
                "database_server_unavailable",
            ),
        ]
    };
}

fn placement_errors() -> Vec<(PlacementError, u16, &'static str)> {
    let mut rows = shared_rows!(PlacementError, "move");
    rows.extend([
        (PlacementError::ServerNotFound, 404, "server_not_found"),
        (PlacementError::SameServer, 409, "same_server"),
        (PlacementError::ServerNotActive, 409, "server_not_active"),
        (PlacementError::NoServer, 503, "no_server_available"),
        (PlacementError::copy("dumping", io()), 503, "move_failed"),
        (PlacementError::Dump(DumpError::NoHost), 503, "move_failed"),
        (
            PlacementError::Tenant(Box::new(TenantsError::SlugTaken)),
            409,
            "slug_taken",
        ),
    ]);
    rows
}

fn backups_errors() -> Vec<(BackupsError, u16, &'static str)> {
    let mut rows = shared_rows!(BackupsError, "back up");
    rows.extend([
        (BackupsError::RestoreNeedsNew, 409, "restore_needs_new"),
        (BackupsError::NoBackupLocation, 409, "no_backup_location"),
        (BackupsError::BackupNotFound, 404, "backup_not_found"),
        (BackupsError::Cancelled, 409, "cancelled"),
        (BackupsError::ForeignBackup, 409, "backup_refused"),
        (
            BackupsError::ArchiveTooNew {
                archive: 9,
                newest: 4,
            },
            409,
            "archive_too_new",
        ),
        (BackupsError::NoWalArchive, 409, "no_wal_archive"),
        (
            BackupsError::OutsideRecoveryWindow {
                earliest: None,
                latest: None,
            },
            422,
            "outside_recovery_window",
        ),
        (
            BackupsError::WalArchive(crate::wal_archive::WalArchiveError::NotInstalled),
            503,
            "restore_failed",
        ),
        (BackupsError::copy("dumping", io()), 503, "move_failed"),
        (BackupsError::Dump(DumpError::NoHost), 503, "move_failed"),
        (
            BackupsError::Restore(DumpError::NoHost),
            503,
            "restore_failed",
        ),
        (
            BackupsError::Backup(BackupError::Unsealed),
            409,
            "backup_refused",
        ),
        (
            BackupsError::Migrate(MigrateError::Query(pg())),
            500,
            "internal_error",
        ),
        (
            BackupsError::Crypto(CryptoError::Open),
            500,
            "internal_error",
        ),
        (
            BackupsError::Tenant(Box::new(TenantsError::SlugTaken)),
            409,
            "slug_taken",
        ),
    ]);
    rows
}

#[test]
fn every_variant_of_the_tenant_nouns_errors_answers_its_pinned_status_and_code() {
    check(keys_errors(), KeysError::COUNT);
    check(placement_errors(), PlacementError::COUNT);
    check(backups_errors(), BackupsError::COUNT);
}

#[test]
fn every_tenant_noun_failure_code_is_the_code_the_api_answers_with() {
    let mut keys: Vec<KeysError> = keys_errors().into_iter().map(|(e, ..)| e).collect();
    keys.extend(catalog_errors().into_iter().map(KeysError::Catalog));
    same(keys, KeysError::COUNT, KeysError::code);
    let mut placement: Vec<PlacementError> =
        placement_errors().into_iter().map(|(e, ..)| e).collect();
    placement.extend(catalog_errors().into_iter().map(PlacementError::Catalog));
    placement.extend(
        provision_errors()
            .into_iter()
            .map(PlacementError::Provision),
    );
    same(placement, PlacementError::COUNT, PlacementError::code);
    let mut backups: Vec<BackupsError> = backups_errors().into_iter().map(|(e, ..)| e).collect();
    backups.extend(backup_errors().map(BackupsError::Backup));
    backups.extend(catalog_errors().into_iter().map(BackupsError::Catalog));
    backups.extend(provision_errors().into_iter().map(BackupsError::Provision));
    same(backups, BackupsError::COUNT, BackupsError::code);
}

/// A failure carried from one noun's error into another's keeps its code
/// and its answer, whichever way it crosses.
#[test]
fn a_failure_crossing_between_nouns_keeps_its_code() {
    let crossed = [
        TenantsError::from(PlacementError::SameServer),
        TenantsError::from(PlacementError::Busy),
        TenantsError::from(PlacementError::Tenant(Box::new(TenantsError::NotDeleted))),
        TenantsError::from(BackupsError::Backup(BackupError::Location("x".into()))),
        TenantsError::from(BackupsError::Dump(DumpError::NoHost)),
        TenantsError::from(BackupsError::Abandoned(crate::operations::Abandoned)),
    ];
    let codes = [
        "same_server",
        "tenant_busy",
        "tenant_not_deleted",
        "backup_location_unavailable",
        "move_failed",
        "operation_abandoned",
    ];
    for (error, code) in crossed.into_iter().zip(codes) {
        assert_eq!(error.code().as_str(), code, "{error:?}");
        let api = ApiError::from(PlacementError::from(error));
        assert_eq!(api.code().as_str(), code);
    }
    for (error, code) in [
        (TenantsError::SlugTaken, "slug_taken"),
        (TenantsError::Busy, "tenant_busy"),
        (
            TenantsError::Placement(PlacementError::SameServer),
            "same_server",
        ),
    ] {
        let crossed = BackupsError::from(error);
        assert_eq!(crossed.code().as_str(), code, "{crossed:?}");
        assert_eq!(TenantsError::from(crossed).code().as_str(), code);
    }
}
