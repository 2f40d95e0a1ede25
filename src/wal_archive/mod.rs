//! Continuous WAL archiving and base backups with pgBackRest, and what a
//! point-in-time restore of one database reads from them.
//!
//! A server's *archive* is a pgBackRest stanza in a repository (`Archive`):
//! for the embedded default, a folder under the backup location that the
//! embedded cluster pushes its WAL to (`embedded_setup`). The catalog keeps
//! each server's archive (`db_servers.wal_archive`, its secrets sealed).
//!
//! Rules:
//! - pgBackRest runs as the cluster's owner (`postgres` under root), from
//!   a cleared environment, with its options in a config file of its own
//!   (mode 0600) and never on a command line another user could read.
//! - The repository's cipher passphrase is derived from the master key
//!   once, when the repository is made, and kept from then on: a rotated
//!   master key must not lock us out of an existing repository.
//! - Recovery happens in a scratch cluster (`recovery.rs`) with archiving
//!   off and no network listener; it never touches the server it came from.

mod command;
mod conf;
mod info;
mod invalid_pages;
mod recovery;
mod repository;

pub use command::PgBackRest;
pub use conf::{valid_stanza, Archive, ArchiveRecord, EmbeddedSetup, EMBEDDED_STANZA};
pub use info::{ArchiveInfo, BackupKind, BaseBackup};
pub use recovery::{stop_clusters_under, Recovered, Recovery};
pub use repository::{Repository, S3Key, UriStyle};

use std::path::{Path, PathBuf};

/// The embedded cluster's archive as the process that started the cluster
/// runs it: it pushes WAL, and this process takes its base backups.
#[derive(Debug, Clone)]
pub struct EmbeddedArchive {
    pub archive: Archive,
    /// Its pgBackRest config file.
    pub conf: PathBuf,
    pub pgbackrest: PgBackRest,
    /// The cluster's port, once it runs.
    pub port: u16,
}

impl EmbeddedArchive {
    /// Takes a base backup; pgBackRest expires what retention no longer
    /// keeps right after.
    pub async fn backup(&self, kind: BackupKind) -> Result<(), WalArchiveError> {
        let args = [
            format!("--pg1-port={}", self.port),
            format!("--type={}", kind.as_str()),
        ];
        self.pgbackrest
            .run(&self.conf, &self.archive.record.stanza, "backup", &args)
            .await
            .map(drop)
    }
}

/// Where this process writes pgBackRest's configs: a folder the program's
/// user can write, swept of what a killed process left (the configs hold
/// secrets).
pub trait WorkDirs: Send + Sync {
    fn process_dir(&self) -> Result<PathBuf, WalArchiveError>;
}

/// Reads archives (`pgbackrest info`), each time with a config of its own.
#[derive(Clone)]
pub struct ArchiveReader {
    pgbackrest: PgBackRest,
    dirs: std::sync::Arc<dyn WorkDirs>,
}

impl ArchiveReader {
    pub fn new(pgbackrest: PgBackRest, dirs: std::sync::Arc<dyn WorkDirs>) -> Self {
        Self { pgbackrest, dirs }
    }

    /// What `archive` holds now; the config is removed after.
    pub async fn info(&self, archive: &Archive) -> Result<ArchiveInfo, WalArchiveError> {
        let work = self
            .dirs
            .process_dir()?
            .join(format!("info-{}", uuid::Uuid::new_v4().simple()));
        let info = read_info(&self.pgbackrest, archive, &work).await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        info
    }
}

/// What the archive holds now (`pgbackrest info`), read with a config of
/// its own in `work_dir` (a folder the program's user can write).
async fn read_info(
    pgbackrest: &PgBackRest,
    archive: &Archive,
    work_dir: &Path,
) -> Result<ArchiveInfo, WalArchiveError> {
    pgbackrest.make_owned_dir(work_dir)?;
    let conf = work_dir.join("pgbackrest.conf");
    let text = conf::render_for_recovery(archive, &work_dir.join("pgdata"), work_dir).map_err(
        |detail| WalArchiveError::Command {
            command: "info",
            detail,
        },
    )?;
    pgbackrest.write_conf(&conf, &text, archive)?;
    let json = pgbackrest
        .run(
            &conf,
            &archive.record.stanza,
            "info",
            // A repository that cannot be reached is said so in seconds,
            // not after pgBackRest's minute of retries.
            &["--output=json".to_string(), "--io-timeout=15".into()],
        )
        .await?;
    ArchiveInfo::parse(&json, &archive.record.stanza)
}

#[derive(Debug, thiserror::Error)]
pub enum WalArchiveError {
    /// No `pgbackrest` program on this machine.
    #[error("pgBackRest is not installed (`apt-get install pgbackrest` on Debian/Ubuntu)")]
    NotInstalled,
    /// A pgBackRest command failed; its own message follows.
    #[error("pgbackrest {command} failed: {detail}")]
    Command {
        command: &'static str,
        detail: String,
    },
    /// A scratch cluster did not recover.
    #[error("the scratch cluster did not recover: {0}")]
    Recovery(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// `pgbackrest info` answered something this build cannot read.
    #[error("cannot read pgbackrest info: {0}")]
    Info(String),
}

impl WalArchiveError {
    pub(crate) fn io<'a>(
        what: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |source| Self::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
