//! Point-in-time restore of one tenant, from its server's WAL archive
//! (pgBackRest): the recovery window, the restore itself (`restore_time.rs`)
//! and the embedded cluster's base backups (`base_backups.rs`).
//!
//! Rules:
//! - A restore reads the archive the catalog records for the tenant's
//!   server (`db_servers.wal_archive`), never the server's files: the
//!   database is recovered in a scratch cluster on this machine, dumped,
//!   and restored through the same path as a backup archive.
//! - A time is restorable when it lies between the second after the oldest
//!   base backup ended (`wal_archive::ArchiveInfo::earliest`) and the newest WAL the archive holds (or now, when the server
//!   answers and its archiver is not failing: the restore pushes the WAL
//!   up to now first). Anything else is refused before anything begins.

mod base_backups;
mod restore_time;
mod tools;

pub use tools::pitr_tools;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{BackupsError, Tenants};
use crate::catalog::{wal_archive_purpose, DbServer};
use crate::domain::TenantId;
use crate::local_pg::PgBinaries;
use crate::wal_archive::{
    Archive, ArchiveInfo, ArchiveReader, ArchiveRecord, BaseBackup, EmbeddedArchive, PgBackRest,
    WalArchiveError, WorkDirs,
};

/// What this process needs to restore to a time, and, when it runs the
/// embedded cluster that archives, to take its base backups.
pub struct PitrTools {
    pub pgbackrest: PgBackRest,
    pub binaries: PgBinaries,
    /// Where scratch clusters go (`backup.recovery_dir`).
    pub recovery: tools::RecoveryFolder,
    pub embedded: Option<EmbeddedArchive>,
    pub full_every: Option<std::time::Duration>,
    pub diff_every: Option<std::time::Duration>,
}

impl PitrTools {
    /// This process's recovery folder, made and handed to the cluster's user.
    pub(super) fn process_dir(&self) -> Result<&std::path::Path, BackupsError> {
        let scratch = self.recovery.scratch(&self.pgbackrest).map_err(|e| {
            BackupsError::WalArchive(crate::wal_archive::WalArchiveError::Recovery(e))
        })?;
        let dir = scratch.dir().map_err(BackupsError::scratch)?;
        self.pgbackrest.make_owned_dir(dir)?;
        Ok(dir)
    }

    /// Reads archives with this process's pgBackRest, in its recovery folder.
    pub fn reader(self: &Arc<Self>) -> ArchiveReader {
        ArchiveReader::new(self.pgbackrest.clone(), self.clone())
    }
}

impl WorkDirs for PitrTools {
    fn process_dir(&self) -> Result<PathBuf, WalArchiveError> {
        PitrTools::process_dir(self)
            .map(std::path::Path::to_path_buf)
            .map_err(|e| WalArchiveError::Recovery(e.to_string()))
    }
}

/// The times a tenant can be restored to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecoveryWindow {
    /// The earliest restorable time: the second after the oldest base backup ended.
    /// Absent until the first base backup has been taken.
    pub earliest: Option<DateTime<Utc>>,
    /// The latest restorable time: now, when the server answers and its
    /// archiving works (a restore pushes the WAL up to now first); else
    /// when its archiver last pushed a segment.
    pub latest: Option<DateTime<Utc>>,
    /// When the server last archived a WAL segment, if it answered.
    pub last_archived_at: Option<DateTime<Utc>>,
    /// The server's last archiving attempt failed.
    pub archiving_failing: bool,
    /// The server answered: "now" is restorable.
    pub server_reachable: bool,
    /// The base backups in the archive, oldest first.
    pub backups: Vec<BaseBackup>,
}

impl RecoveryWindow {
    /// Whether `at` lies in the window.
    pub fn holds(&self, at: DateTime<Utc>) -> bool {
        matches!((self.earliest, self.latest), (Some(e), Some(l)) if at >= e && at <= l)
    }
}

impl Tenants {
    /// Restores to a time become possible with `tools`.
    pub fn with_pitr(mut self, tools: Option<Arc<PitrTools>>) -> Self {
        self.pitr = tools;
        self
    }

    pub(super) fn pitr(&self) -> Result<&PitrTools, BackupsError> {
        self.pitr.as_deref().ok_or(BackupsError::NoWalArchive)
    }

    /// Records `archive` as the catalog server's (the embedded cluster's).
    pub async fn record_embedded_archive(
        &self,
        server: uuid::Uuid,
        archive: &Archive,
    ) -> Result<(), BackupsError> {
        let record = serde_json::to_value(&archive.record).expect("a record serializes");
        let sealed = self.master_key.seal(
            &wal_archive_purpose(server),
            archive.secrets_json().as_bytes(),
        );
        self.catalog
            .set_wal_archive(server, &record, &sealed)
            .await?;
        Ok(())
    }

    /// The archive the catalog records for `server`.
    pub(super) async fn archive_of(&self, server: &DbServer) -> Result<Archive, BackupsError> {
        let stored = self
            .catalog
            .wal_archive(server.id)
            .await?
            .ok_or(BackupsError::NoWalArchive)?;
        let record: ArchiveRecord = serde_json::from_value(stored.record)
            .map_err(|_| BackupsError::Inconsistent("a server's WAL archive record"))?;
        let secrets = self
            .master_key
            .open_string(&wal_archive_purpose(server.id), &stored.secrets_enc)?;
        Archive::from_parts(record, secrecy::ExposeSecret::expose_secret(&secrets))
            .map_err(|_| BackupsError::Inconsistent("a server's WAL archive secrets"))
    }

    /// What the archive holds, read now.
    pub(super) async fn archive_info(
        &self,
        archive: &Archive,
    ) -> Result<ArchiveInfo, BackupsError> {
        let tools = self.pitr.as_ref().ok_or(BackupsError::NoWalArchive)?;
        Ok(tools.reader().info(archive).await?)
    }

    /// The times `tenant` (a root tenant) can be restored to.
    pub async fn recovery_window(&self, tenant: TenantId) -> Result<RecoveryWindow, BackupsError> {
        let record = self.record(tenant).await?;
        if record.parent_id.is_some() {
            return Err(BackupsError::InvalidState {
                action: "restore a subtenant to a time on its own (restore its root tenant);",
                status: record.status,
            });
        }
        let server = self.server_of(&record).await?;
        let archive = self.archive_of(&server).await?;
        let info = self.archive_info(&archive).await?;
        let archiver = self.provisioner.archiver(&server).await.ok();
        let reachable = archiver.is_some();
        let last_archived_at = archiver.as_ref().and_then(|a| a.last_archived_at);
        let failing = archiver.as_ref().is_some_and(|a| a.failing);
        let earliest = info.earliest();
        let latest = match (reachable && !failing, earliest) {
            (_, None) => None,
            (true, Some(_)) => Some(Utc::now()),
            (false, Some(e)) => last_archived_at.map(|l| l.max(e)).or(Some(e)),
        };
        Ok(RecoveryWindow {
            earliest,
            latest,
            last_archived_at,
            archiving_failing: failing,
            server_reachable: reachable,
            backups: info.backups,
        })
    }
}
