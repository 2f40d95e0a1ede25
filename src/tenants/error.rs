use crate::catalog::CatalogError;
use crate::crypto::CryptoError;
use crate::domain::TenantStatus;
use crate::migrator::MigrateError;
use crate::provisioner::ProvisionError;
use crate::tenant_config::FieldError;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum TenantsError {
    #[error("no such tenant")]
    NotFound,
    #[error("the slug is taken")]
    SlugTaken,
    #[error("another operation on this tenant is in progress")]
    Busy,
    #[error("cannot {action} a tenant that is {status:?}")]
    InvalidState {
        action: &'static str,
        status: TenantStatus,
    },
    #[error("{0}")]
    InvalidField(FieldError),
    #[error("a subtenant cannot have subtenants")]
    TooDeep,
    /// A subtenant's setting reaches past what its parent allows.
    #[error("{0}")]
    ExceedsParent(FieldError),
    /// The request only applies to a root tenant (its own database and tier).
    #[error("{0}")]
    NotRoot(&'static str),
    #[error("the parent tenant is not active")]
    ParentNotActive,
    #[error("no active database server can take a tenant")]
    NoServer,
    #[error("no such database server")]
    ServerNotFound,
    #[error("the archive's tenant is no longer in the catalog (or was purged); restore it as a new tenant")]
    RestoreNeedsNew,
    #[error("the tenant is already on that server")]
    SameServer,
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
    #[error("only a soft-deleted tenant can be purged: delete it first (without purge)")]
    NotDeleted,
    #[error(transparent)]
    Abandoned(#[from] crate::operations::Abandoned),
    #[error("the target server is not active (draining or down)")]
    ServerNotActive,
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
    Backup(#[from] crate::backup::BackupError),
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
}

impl From<CatalogError> for TenantsError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::SlugTaken => Self::SlugTaken,
            CatalogError::TenantBusy => Self::Busy,
            CatalogError::ParentMissing | CatalogError::TenantMissing => Self::NotFound,
            CatalogError::Fenced => Self::Abandoned(crate::operations::Abandoned),
            CatalogError::ServerNotActive => Self::ServerNotActive,
            other => Self::Catalog(other),
        }
    }
}

impl TenantsError {
    /// A copy (backup, move, clone) that failed at `step` because of `source`.
    pub(crate) fn copy(
        step: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Copy {
            step,
            source: Some(Box::new(source)),
        }
    }
}

impl From<FieldError> for TenantsError {
    fn from(e: FieldError) -> Self {
        Self::InvalidField(e)
    }
}

impl TenantsError {
    /// The error code the API answers with for this error, and the one an
    /// operation that fails with it records with its `failed` state, so a
    /// failure reads the same whether the CLI or the API started it.
    pub fn code(&self) -> &'static str {
        use crate::backup::BackupError;
        match self {
            Self::NotFound => "tenant_not_found",
            Self::SlugTaken => "slug_taken",
            Self::Busy => "tenant_busy",
            Self::InvalidState { .. } => "invalid_state",
            Self::InvalidField(_) => "invalid_field",
            Self::TooDeep => "subtenant_depth",
            Self::ExceedsParent(_) => "exceeds_parent",
            Self::NotRoot(_) => "not_a_root_tenant",
            Self::ParentNotActive => "parent_not_active",
            Self::NoServer => "no_server_available",
            Self::ServerNotFound => "server_not_found",
            Self::RestoreNeedsNew => "restore_needs_new",
            Self::SameServer => "same_server",
            Self::NoBackupLocation => "no_backup_location",
            Self::BackupNotFound => "backup_not_found",
            Self::Cancelled => "cancelled",
            Self::ForeignBackup => "backup_refused",
            Self::ArchiveTooNew { .. } => "archive_too_new",
            Self::NotDeleted => "tenant_not_deleted",
            Self::Abandoned(_) => "operation_abandoned",
            Self::ServerNotActive => "server_not_active",
            Self::Copy { .. } | Self::Dump(_) => "move_failed",
            Self::Restore(_) => "restore_failed",
            Self::Backup(inner) => match inner {
                BackupError::NotAnArchive(_)
                | BackupError::Corrupt(_)
                | BackupError::Unsealed
                | BackupError::UnsupportedFormat(_) => "backup_refused",
                BackupError::Missing(_) => "backup_missing",
                BackupError::Location(_) => "backup_location_unavailable",
                BackupError::Io(_) => "internal_error",
            },
            Self::Catalog(inner) => inner.code(),
            Self::Provision(inner) => inner.code(),
            Self::Inconsistent(_) | Self::Migrate(_) | Self::Crypto(_) => "internal_error",
        }
    }
}
