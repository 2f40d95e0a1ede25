//! Why a backup or a restore was refused or failed.

use crate::backup::BackupError;
use crate::catalog::CatalogError;
use crate::crypto::CryptoError;
use crate::domain::TenantStatus;
use crate::error_code::ErrorCode;
use crate::migrator::MigrateError;
use crate::provisioner::ProvisionError;
use crate::tenants::shared_failures::{
    carry_failures, code_with_shared, copy_failures, from_catalog,
};
use crate::tenants::TenantsError;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/http/error/tests`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum BackupsError {
    #[error("no such tenant")]
    NotFound,
    #[error("another operation on this tenant is in progress")]
    Busy,
    #[error("cannot {action} a tenant that is {status:?}")]
    InvalidState {
        action: &'static str,
        status: TenantStatus,
    },
    #[error("the archive's tenant is no longer in the catalog (or was purged); restore it as a new tenant")]
    RestoreNeedsNew,
    #[error("no backup location is configured (backup.location)")]
    NoBackupLocation,
    #[error("no such backup of this tenant")]
    BackupNotFound,
    #[error("the operation was cancelled")]
    Cancelled,
    #[error("the backup is of another tenant than the one it is recorded for")]
    ForeignBackup,
    /// The backup's schema is newer than any this build's tenant
    /// migrations know: restored, the tenant could not be served.
    #[error("the backup is at schema version {archive}, newer than this build knows (its newest is {newest}); restore it with a newer tenant-plane")]
    ArchiveTooNew { archive: i32, newest: i32 },
    /// The tenant's server keeps no WAL archive (or this process cannot
    /// read one: no pgBackRest).
    #[error("the tenant's database server keeps no WAL archive to restore to a time from (on the embedded cluster: set backup.location, a folder or a bucket over HTTPS, with pgBackRest installed; on a registered server: set its WAL archive)")]
    NoWalArchive,
    #[error("the time is outside the tenant's recovery window")]
    OutsideRecoveryWindow {
        earliest: Option<chrono::DateTime<chrono::Utc>>,
        latest: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// pgBackRest, or the scratch cluster, failed.
    #[error(transparent)]
    WalArchive(#[from] crate::wal_archive::WalArchiveError),
    #[error(transparent)]
    Abandoned(#[from] crate::operations::Abandoned),
    #[error("copying the tenant's database failed: {step}")]
    Copy {
        step: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error(transparent)]
    Dump(#[from] crate::dump::DumpError),
    /// Restoring a backup's dump failed (a restore's own failure, not a
    /// move's).
    #[error("restoring the backup's dump failed: {0}")]
    Restore(#[source] crate::dump::DumpError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("catalog inconsistency: {0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Catalog(CatalogError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The lifecycle's own failures where a restore as a new tenant places
    /// it (a slug taken, no server), or reads its view.
    #[error(transparent)]
    Tenant(Box<TenantsError>),
}

impl BackupsError {
    // A copy here is a dump or a clone's ids.
    copy_failures!();

    /// The error code the API answers with, and the one a failed backup or
    /// restore records (see `TenantsError::code`). A backup's own failed
    /// dump records `backup_failed` instead (`backup.rs`).
    pub fn code(&self) -> ErrorCode {
        code_with_shared!(self, {
            Self::RestoreNeedsNew => ErrorCode::RestoreNeedsNew,
            Self::NoBackupLocation => ErrorCode::NoBackupLocation,
            Self::BackupNotFound => ErrorCode::BackupNotFound,
            Self::Cancelled => ErrorCode::Cancelled,
            Self::ForeignBackup => ErrorCode::BackupRefused,
            Self::ArchiveTooNew { .. } => ErrorCode::ArchiveTooNew,
            Self::NoWalArchive => ErrorCode::NoWalArchive,
            Self::OutsideRecoveryWindow { .. } => ErrorCode::OutsideRecoveryWindow,
            Self::WalArchive(_) => ErrorCode::RestoreFailed,
            Self::Copy { .. } | Self::Dump(_) => ErrorCode::MoveFailed,
            Self::Restore(_) => ErrorCode::RestoreFailed,
            Self::Backup(inner) => match inner {
                BackupError::NotAnArchive(_)
                | BackupError::Corrupt(_)
                | BackupError::Unsealed
                | BackupError::UnsupportedFormat(_) => ErrorCode::BackupRefused,
                BackupError::Missing(_) => ErrorCode::BackupMissing,
                BackupError::Location(_) => ErrorCode::BackupLocationUnavailable,
                BackupError::Io(_) => ErrorCode::InternalError,
            },
            Self::Migrate(_) | Self::Crypto(_) => ErrorCode::InternalError,
            Self::Tenant(inner) => inner.code(),
        })
    }
}

from_catalog!(BackupsError, {});

// The lifecycle's failures a backup shares read as the backup's own, so
// a restore sees `Abandoned` however it arose.
carry_failures!(TenantsError => BackupsError, units: [], fields: [Migrate, Crypto], {
    TenantsError::Backups(inner) => inner,
    other => Self::Tenant(Box::new(other)),
});
