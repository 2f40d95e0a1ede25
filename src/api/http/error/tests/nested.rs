//! Errors that reach a client only inside another.

use std::sync::Arc;

use strum::EnumCount;

use super::{check_nested, io, pg, pool, refinery};
use crate::backup::BackupError;
use crate::crypto::CryptoError;
use crate::directory::CredentialsError;
use crate::dump::DumpError;
use crate::migrator::MigrateError;
use crate::services::ProvisionError;
use crate::tenancy::RouterError;
use crate::tenants::{BackupsError, TenantsError};

/// The errors that reach a client only inside another: each variant of
/// each, through the wrapper that carries it.
#[test]
fn every_variant_of_the_nested_errors_answers_its_pinned_status_and_code() {
    check_nested(
        vec![
            (
                ProvisionError::Connect {
                    server: "s1".into(),
                    source: pg(),
                },
                503,
                "database_server_unavailable",
            ),
            (ProvisionError::Sql(pg()), 500, "internal_error"),
            (
                ProvisionError::Migrate(MigrateError::Query(pg())),
                500,
                "internal_error",
            ),
            (
                ProvisionError::NoCredentials("s1".into()),
                500,
                "internal_error",
            ),
            (
                ProvisionError::Pool {
                    server: "s1".into(),
                    source: pool(),
                },
                500,
                "internal_error",
            ),
        ],
        ProvisionError::COUNT,
        TenantsError::Provision,
    );
    check_nested(
        vec![
            (MigrateError::Connect(pg().into()), 500, "internal_error"),
            (MigrateError::Query(pg()), 500, "internal_error"),
            (MigrateError::Refinery(refinery()), 500, "internal_error"),
            (
                MigrateError::LockTimeout {
                    attempts: 4,
                    source: Box::new(MigrateError::Query(pg())),
                },
                409,
                "migration_lock_timeout",
            ),
            (
                MigrateError::Load {
                    path: "/m".into(),
                    source: refinery(),
                },
                500,
                "internal_error",
            ),
            // Revert.
            (
                MigrateError::DownFile {
                    file: "V2__x.down.sql".into(),
                    reason: "x".into(),
                },
                500,
                "internal_error",
            ),
            (
                MigrateError::NoDownMigration { version: 2 },
                409,
                "no_down_migration",
            ),
            (
                MigrateError::DataLossNotAccepted {
                    file: "V2__x.down.sql".into(),
                    rule: "ban-drop-column".into(),
                    line: 1,
                },
                409,
                "data_loss_not_accepted",
            ),
        ],
        MigrateError::COUNT,
        TenantsError::Migrate,
    );
    check_nested(
        vec![
            (
                DumpError::Spawn {
                    program: "pg_dump".into(),
                    source: io(),
                },
                503,
                "move_failed",
            ),
            (
                DumpError::Failed {
                    program: "pg_dump".into(),
                    exit: "exit 1".into(),
                    class: None,
                },
                503,
                "move_failed",
            ),
            (DumpError::NoHost, 503, "move_failed"),
            (DumpError::Query(pg()), 503, "move_failed"),
        ],
        DumpError::COUNT,
        BackupsError::Dump,
    );
    check_nested(
        vec![
            (BackupError::Io(io()), 500, "internal_error"),
            (BackupError::NotAnArchive("x".into()), 409, "backup_refused"),
            (BackupError::Corrupt("x".into()), 409, "backup_refused"),
            (BackupError::Unsealed, 409, "backup_refused"),
            (BackupError::UnsupportedFormat(9), 409, "backup_refused"),
            (
                BackupError::Location("x".into()),
                503,
                "backup_location_unavailable",
            ),
            (BackupError::Missing("x".into()), 409, "backup_missing"),
        ],
        BackupError::COUNT,
        BackupsError::Backup,
    );
    check_nested(
        vec![
            (CryptoError::BadKey, 500, "internal_error"),
            (CryptoError::Open, 500, "internal_error"),
        ],
        CryptoError::COUNT,
        TenantsError::Crypto,
    );
    check_nested(
        vec![
            (CredentialsError::Missing, 500, "internal_error"),
            (
                CredentialsError::Sealed(CryptoError::Open),
                500,
                "internal_error",
            ),
        ],
        CredentialsError::COUNT,
        |e| RouterError::Credentials(Arc::new(e)),
    );
}
