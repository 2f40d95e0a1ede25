//! One database recovered to a time in a scratch cluster: `pgbackrest
//! restore --db-include` into a folder of its own, a PostgreSQL of the same
//! major version replaying the archive up to the target, then promoted.
//!
//! Rules:
//! - The scratch cluster listens on a Unix socket in its own folder only
//!   (no TCP), trusts only that socket, and runs with archiving off, so it
//!   can neither be reached from the network nor push WAL into the
//!   repository it came from.
//! - Its folder, `<process folder>/<operation id>`, is removed when the
//!   restore ends, failed or not; a process killed meanwhile leaves it to
//!   the next start, which stops any server still running there
//!   (`stop_clusters_under`) before its scratch sweep removes the folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::conf::render_for_recovery;
use super::invalid_pages;
use super::{Archive, PgBackRest, WalArchiveError};
use crate::local_pg::PgBinaries;

/// Files restored at once: one a core, up to four (decompressing and
/// decrypting is the work; more would only queue on the disk).
fn restore_processes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// In `run/`: the whole cluster was restored (not one database).
const WHOLE_CLUSTER: &str = "whole-cluster";

/// How long a scratch cluster may take to replay up to its target.
const RECOVERY_WAIT: Duration = Duration::from_secs(3600);
const POLL: Duration = Duration::from_millis(100);

/// One restore's scratch cluster.
pub struct Recovery {
    dir: PathBuf,
    pgbackrest: PgBackRest,
    binaries: PgBinaries,
}

/// A recovered scratch cluster: how to reach the database in it.
pub struct Recovered {
    /// A libpq DSN for the recovered database, over the scratch's socket.
    pub dsn: String,
}

impl Recovery {
    /// Makes `<process_dir>/<op>` with the cluster's folders, all owned by
    /// the cluster's user.
    pub fn prepare(
        process_dir: &Path,
        op: Uuid,
        pgbackrest: PgBackRest,
        binaries: PgBinaries,
    ) -> Result<Self, WalArchiveError> {
        let dir = process_dir.join(op.simple().to_string());
        pgbackrest.make_owned_dir(process_dir)?;
        for sub in ["", "pgdata", "run", "pgbackrest"] {
            pgbackrest.make_owned_dir(&dir.join(sub))?;
        }
        Ok(Self {
            dir,
            pgbackrest,
            binaries,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn pgdata(&self) -> PathBuf {
        self.dir.join("pgdata")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Restores the files of `db` (and the cluster's own) from the backup
    /// that precedes `at`, set to recover to `at` and promote. A database
    /// the backup does not hold yet (made after it) is restored with the
    /// whole cluster: replaying the archive makes it.
    pub async fn restore(
        &self,
        archive: &Archive,
        db: &str,
        at: DateTime<Utc>,
    ) -> Result<(), WalArchiveError> {
        let conf = self.dir.join("pgbackrest").join("pgbackrest.conf");
        let text = render_for_recovery(archive, &self.pgdata(), &self.dir.join("pgbackrest"))
            .map_err(|detail| WalArchiveError::Command {
                command: "restore",
                detail,
            })?;
        self.pgbackrest.write_conf(&conf, &text, archive)?;
        let stanza = &archive.record.stanza;
        let mut args = vec![
            "--type=time".to_string(),
            format!("--target={}", at.format("%Y-%m-%d %H:%M:%S%.6f+00")),
            "--target-action=promote".into(),
            "--archive-mode=off".into(),
            format!("--process-max={}", restore_processes()),
        ];
        let one = [args.clone(), vec![format!("--db-include={db}")]].concat();
        match self.pgbackrest.run(&conf, stanza, "restore", &one).await {
            Ok(_) => Ok(()),
            Err(WalArchiveError::Command { detail, .. })
                if detail.contains("does not exist") && detail.contains(db) =>
            {
                tracing::info!(
                    db,
                    "the database is newer than the base backup; restoring the whole cluster"
                );
                // Recorded: the recovery (perhaps in the next process) must
                // not ignore invalid pages of a whole cluster.
                self.pgbackrest
                    .write_owned(&self.run_dir().join(WHOLE_CLUSTER), "")?;
                args.push("--delta".into());
                self.pgbackrest
                    .run(&conf, stanza, "restore", &args)
                    .await
                    .map(drop)
            }
            Err(e) => Err(e),
        }
    }

    /// Where the scratch cluster's socket goes: a short private folder
    /// (a socket's path has at most 107 bytes, and the scratch folder's is
    /// longer), named in `run/socket-dir` so a sweep can remove it too.
    fn socket_dir(&self) -> Result<PathBuf, WalArchiveError> {
        let record = self.run_dir().join("socket-dir");
        if let Ok(kept) = std::fs::read_to_string(&record) {
            return Ok(PathBuf::from(kept.trim()));
        }
        let dir = Path::new("/tmp").join(format!(
            "tp-recovery-{}",
            &Uuid::new_v4().simple().to_string()[..12]
        ));
        self.pgbackrest.make_owned_dir(&dir)?;
        self.pgbackrest
            .write_owned(&record, &dir.display().to_string())?;
        Ok(dir)
    }

    /// Starts the scratch cluster and waits until it has replayed up to
    /// its target and promoted.
    pub async fn recover(&self, db: &str) -> Result<Recovered, WalArchiveError> {
        let run = self.run_dir();
        let socket = self.socket_dir()?;
        let hba = run.join("pg_hba.conf");
        self.pgbackrest.write_owned(&hba, "local all all trust\n")?;
        // No hot standby: nobody reads it before it has promoted, and a hot
        // standby would need the source's connection limits and more.
        // Same major version, or the files cannot be read at all.
        let major = std::fs::read_to_string(self.pgdata().join("PG_VERSION")).map_err(
            WalArchiveError::io("cannot read", &self.pgdata().join("PG_VERSION")),
        )?;
        let ours = self.binaries.major_version().unwrap_or_default();
        if major.trim() != ours {
            return Err(WalArchiveError::Recovery(format!(
                "the backup is of PostgreSQL {}, and this machine's server programs are {ours}",
                major.trim()
            )));
        }
        let port =
            crate::local_pg::free_port().map_err(|e| WalArchiveError::Recovery(e.to_string()))?;
        let selective = !run.join(WHOLE_CLUSTER).exists();
        let mut options = format!(
            "-p {port} -c listen_addresses='' -c unix_socket_directories='{}' -c hba_file='{}' \
             -c archive_mode=off -c hot_standby=off",
            socket.display(),
            hba.display()
        );
        if selective {
            options = format!("{options} {}", invalid_pages::IGNORE_INVALID_PAGES);
        }
        let log = run.join("postgres.log");
        let started = self
            .pg_ctl(&[
                "-D".as_ref(),
                self.pgdata().as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "3600".as_ref(),
                "start".as_ref(),
            ])
            .await;
        if let Err(e) = started {
            return Err(WalArchiveError::Recovery(format!(
                "{e}; server log: {}",
                tail(&log)
            )));
        }
        let dsn = |name: &str| {
            format!(
                "host={} port={port} user={} dbname={name} sslmode=disable",
                socket.display(),
                crate::local_pg::SUPERUSER
            )
        };
        let config = crate::pg::PgConfig::parse(&dsn("postgres"))
            .map_err(|e| WalArchiveError::Recovery(e.to_string()))?;
        let deadline = Instant::now() + RECOVERY_WAIT;
        loop {
            let answer = match config.connect().await {
                Ok((client, connection)) => {
                    let driver = tokio::spawn(connection);
                    let answer = client
                        .query_one(
                            "SELECT pg_is_in_recovery(), (SELECT oid FROM pg_database WHERE datname = $1)",
                            &[&db],
                        )
                        .await
                        .map(|row| (row.get::<_, bool>(0), row.get::<_, Option<u32>>(1)))
                        .map_err(|e| e.to_string());
                    drop(client);
                    let _ = driver.await;
                    answer
                }
                Err(e) => Err(e.to_string()),
            };
            match answer {
                Ok((false, oid)) => {
                    if selective {
                        invalid_pages::check(&log, db, oid)?;
                    }
                    break;
                }
                Ok((true, _)) => {}
                // Gone: recovery failed (a target past the archive's end).
                Err(e) if !self.pgdata().join("postmaster.pid").exists() => {
                    return Err(WalArchiveError::Recovery(format!(
                        "{e}; server log: {}",
                        tail(&log)
                    )));
                }
                Err(_) => {}
            }
            if Instant::now() > deadline {
                return Err(WalArchiveError::Recovery(format!(
                    "still recovering after {RECOVERY_WAIT:?}; server log: {}",
                    tail(&log)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(Recovered { dsn: dsn(db) })
    }

    /// Stops the scratch cluster, if it runs, and removes its folder.
    pub async fn remove(self) {
        if self.pgdata().join("postmaster.pid").exists() {
            let pgdata = self.pgdata();
            let stop = [
                "-D".as_ref(),
                pgdata.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ];
            if let Err(e) = self.pg_ctl(&stop).await {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not stop a scratch cluster");
            }
        }
        if let Ok(socket) = self.socket_dir_kept() {
            let _ = tokio::fs::remove_dir_all(socket).await;
        }
        if let Err(e) = tokio::fs::remove_dir_all(&self.dir).await {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a scratch cluster's folder");
        }
    }

    fn socket_dir_kept(&self) -> std::io::Result<PathBuf> {
        socket_dir_of(&self.dir)
    }

    async fn pg_ctl(&self, args: &[&std::ffi::OsStr]) -> Result<(), WalArchiveError> {
        let mut cmd = tokio::process::Command::new(&self.binaries.pg_ctl);
        cmd.args(args)
            .env_clear()
            .envs(crate::local_pg::child_env())
            .current_dir(self.run_dir())
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.pgbackrest.owner() {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        let out = cmd
            .output()
            .await
            .map_err(|e| WalArchiveError::Recovery(e.to_string()))?;
        if out.status.success() {
            return Ok(());
        }
        Err(WalArchiveError::Recovery(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )))
    }
}

/// Stops every scratch cluster still running under `process_dir` (a
/// folder a killed process left), so that its folder can be removed.
pub fn stop_clusters_under(process_dir: &Path, binaries: &PgBinaries) {
    let Ok(entries) = std::fs::read_dir(process_dir) else {
        return;
    };
    let owner = crate::local_pg::postgres_owner().ok().flatten();
    for entry in entries.flatten() {
        let pgdata = entry.path().join("pgdata");
        let socket = socket_dir_of(&entry.path());
        if !pgdata.join("postmaster.pid").exists() {
            if let Ok(socket) = socket {
                let _ = std::fs::remove_dir_all(socket);
            }
            continue;
        }
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(&binaries.pg_ctl);
        cmd.arg("-D")
            .arg(&pgdata)
            .args(["-m", "immediate", "-w", "stop"])
            .env_clear()
            .envs(crate::local_pg::child_env())
            .current_dir("/");
        if let Some((uid, gid)) = owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        let stopped = cmd.output();
        if let Ok(socket) = socket {
            let _ = std::fs::remove_dir_all(socket);
        }
        match stopped {
            Ok(out) if out.status.success() => {
                tracing::warn!(pgdata = %pgdata.display(), "stopped a scratch cluster a killed process left running")
            }
            _ => {
                tracing::warn!(pgdata = %pgdata.display(), "could not stop a scratch cluster left by a killed process")
            }
        }
    }
}

/// The socket folder a scratch cluster in `dir` used, if it was started.
fn socket_dir_of(dir: &Path) -> std::io::Result<PathBuf> {
    let kept = std::fs::read_to_string(dir.join("run").join("socket-dir"))?;
    let path = PathBuf::from(kept.trim());
    // Only ever one of ours.
    if path.parent() == Some(Path::new("/tmp"))
        && path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tp-recovery-"))
    {
        Ok(path)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a scratch socket folder",
        ))
    }
}

/// What a server log says went wrong: its FATAL and PANIC lines, else its
/// last lines.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let fatal: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("FATAL:") || l.contains("PANIC:"))
        .collect();
    let lines: Vec<&str> = if fatal.is_empty() {
        let mut last: Vec<&str> = text.lines().rev().take(4).collect();
        last.reverse();
        last
    } else {
        fatal
    };
    lines.join(" | ")
}
