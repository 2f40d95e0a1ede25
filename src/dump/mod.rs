//! Copying a tenant database: `pg_dump -Fc` out, `pg_restore` in, and table
//! checksums to prove a copy equals its source. Backups and moves use it;
//! it creates and drops nothing (the provisioner does).
//!
//! Rules:
//! - The programs get a cleared environment with only what they need
//!   (`local_pg::child_env` plus the `PG*` variables set here): the
//!   service's own secrets never reach a child's `/proc/<pid>/environ`.
//! - A program's standard error (hosts, user names, paths, even row
//!   contents) goes to the log alone. The error, which becomes an
//!   operation's error, an event and a webhook body, says only which
//!   program failed, how it exited, and a class of failure when one is
//!   recognised (`FailureClass`).
//! - The programs connect under the server's TLS policy (`PGSSLMODE`, and
//!   `PGSSLROOTCERT` for its CA certificates), as every other connection to
//!   that server does.

mod verify;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

pub use verify::{table_checksums, TableChecksum};

use crate::local_pg::PgBinaries;
use crate::pg::RootCerts;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum DumpError {
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// What failed, safe to show: the program's own words are in the log.
    #[error("{program} failed ({exit}{})", class.map(|c| format!(", {}", c.as_str())).unwrap_or_default())]
    Failed {
        program: String,
        /// `exit 1`, or `signal 9`.
        exit: String,
        class: Option<FailureClass>,
    },
    #[error("the connection settings name no host")]
    NoHost,
    #[error("checksum query failed")]
    Query(#[from] tokio_postgres::Error),
}

/// A failure recognised in a program's standard error, named like a
/// SQLSTATE class (the programs print messages, not codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The server could not be reached.
    ConnectionFailure,
    /// The password or the authentication method was refused.
    InvalidAuthorization,
    /// The role lacks a privilege.
    InsufficientPrivilege,
    /// A database, role or other object named is missing.
    UndefinedObject,
    /// A disk filled up.
    DiskFull,
    /// The server and the program are of versions that do not work together.
    VersionMismatch,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionFailure => "connection_failure",
            Self::InvalidAuthorization => "invalid_authorization",
            Self::InsufficientPrivilege => "insufficient_privilege",
            Self::UndefinedObject => "undefined_object",
            Self::DiskFull => "disk_full",
            Self::VersionMismatch => "version_mismatch",
        }
    }

    /// The class of `stderr`, read in the C locale (`LC_MESSAGES=C`).
    pub fn recognise(stderr: &str) -> Option<Self> {
        let text = stderr.to_ascii_lowercase();
        let has = |needle: &str| text.contains(needle);
        if has("password authentication failed")
            || has("no password supplied")
            || has("authentication failed")
            || has("no pg_hba.conf entry")
        {
            Some(Self::InvalidAuthorization)
        } else if has("permission denied") || has("must be owner") {
            Some(Self::InsufficientPrivilege)
        } else if has("no space left on device") {
            Some(Self::DiskFull)
        } else if has("server version mismatch") || has("unsupported version") {
            Some(Self::VersionMismatch)
        } else if has("does not exist") {
            Some(Self::UndefinedObject)
        } else if has("connection to server")
            || has("could not connect")
            || has("could not translate host name")
            || has("connection refused")
            || has("timeout expired")
        {
            Some(Self::ConnectionFailure)
        } else {
            None
        }
    }
}

/// Where `pg_dump` and `pg_restore` are: beside the server programs when
/// those are installed, else on `PATH`.
#[derive(Debug, Clone)]
pub struct DumpTools {
    pg_dump: PathBuf,
    pg_restore: PathBuf,
}

impl DumpTools {
    pub fn locate() -> Self {
        match PgBinaries::locate(None) {
            Ok(bins) => Self {
                pg_dump: bins.tool("pg_dump"),
                pg_restore: bins.tool("pg_restore"),
            },
            Err(_) => Self {
                pg_dump: "pg_dump".into(),
                pg_restore: "pg_restore".into(),
            },
        }
    }

    /// The version line of `pg_dump`, for a backup's manifest.
    pub async fn version(&self) -> String {
        let mut cmd = Command::new(&self.pg_dump);
        cmd.env_clear().envs(crate::local_pg::child_env());
        match cmd.arg("--version").output().await {
            Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
            Err(_) => "unknown".to_string(),
        }
    }

    /// Dumps the database `config` names to `out` (custom format,
    /// compressed: a backup that is kept).
    pub async fn dump(&self, config: &crate::pg::PgConfig, out: &Path) -> Result<(), DumpError> {
        self.dump_with(config, out, None).await
    }

    /// Dumps it uncompressed, for a dump restored right away on this machine
    /// (a move, a restore to a time): compressing costs the time of a core
    /// and saves only scratch space.
    pub async fn dump_transient(
        &self,
        config: &crate::pg::PgConfig,
        out: &Path,
    ) -> Result<(), DumpError> {
        self.dump_with(config, out, Some("--compress=0")).await
    }

    async fn dump_with(
        &self,
        config: &crate::pg::PgConfig,
        out: &Path,
        compress: Option<&str>,
    ) -> Result<(), DumpError> {
        let mut cmd = Command::new(&self.pg_dump);
        cmd.arg("--format=custom")
            .arg("--no-owner")
            .args(compress)
            .arg("--file")
            .arg(out);
        run(cmd, config).await
    }

    /// Restores `file` into the (empty) database `config` names, in one
    /// transaction: it all lands or none of it does.
    pub async fn restore(
        &self,
        config: &crate::pg::PgConfig,
        file: &Path,
    ) -> Result<(), DumpError> {
        let mut cmd = Command::new(&self.pg_restore);
        cmd.arg("--no-owner")
            .arg("--single-transaction")
            .arg("--exit-on-error")
            .arg(file);
        run(cmd, config).await
    }
}

/// Runs a client program against `config`'s database; the password travels
/// in the environment, never on the command line.
async fn run(mut cmd: Command, config: &crate::pg::PgConfig) -> Result<(), DumpError> {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => return Err(DumpError::NoHost),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    cmd.arg("--host")
        .arg(host)
        .arg("--port")
        .arg(port.to_string())
        .arg("--dbname")
        .arg(config.get_dbname().unwrap_or("postgres"))
        .arg("--no-password")
        .env_clear()
        .envs(crate::local_pg::child_env())
        // Messages the failure classes recognise, whatever LANG says.
        .env("LC_MESSAGES", "C")
        .env("PGCONNECT_TIMEOUT", "5")
        .env("PGAPPNAME", "tenant-plane-dump")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(user) = config.get_user() {
        cmd.arg("--username").arg(user);
    }
    if let Some(password) = config.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    // libpq takes the same TLS policy; the CA certificates go in a file
    // that lives as long as the program runs.
    let tls = config.tls();
    cmd.env("PGSSLMODE", tls.mode.as_str());
    let _root_file = match &tls.roots {
        RootCerts::None => None,
        RootCerts::System => {
            cmd.env("PGSSLROOTCERT", "system");
            None
        }
        RootCerts::Pem(pem) => {
            let mut file = tempfile::NamedTempFile::new().map_err(|source| DumpError::Spawn {
                program: "a CA certificate file".into(),
                source,
            })?;
            std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(|source| {
                DumpError::Spawn {
                    program: "a CA certificate file".into(),
                    source,
                }
            })?;
            cmd.env("PGSSLROOTCERT", file.path());
            Some(file)
        }
    };
    // The program's name, not its path.
    let program = Path::new(cmd.as_std().get_program())
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let out = cmd.output().await.map_err(|source| DumpError::Spawn {
        program: program.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .trim()
        .chars()
        .take(4000)
        .collect();
    let exit = match (out.status.code(), out.status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "no exit status".to_string(),
    };
    let class = FailureClass::recognise(&stderr);
    // The operation's span (when there is one) names the operation.
    tracing::error!(%program, %exit, %stderr, "a database copy program failed");
    Err(DumpError::Failed {
        program,
        exit,
        class,
    })
}

#[cfg(test)]
mod tests;
