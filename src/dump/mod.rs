//! Copying a tenant database: `pg_dump -Fc` out, `pg_restore` in, and table
//! checksums to prove a copy equals its source. Backups and moves use it;
//! it creates and drops nothing (the provisioner does).

mod verify;

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
    #[error("{program} failed: {stderr}")]
    Failed { program: String, stderr: String },
    #[error("the connection settings name no host")]
    NoHost,
    #[error("checksum query failed")]
    Query(#[from] tokio_postgres::Error),
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
        match Command::new(&self.pg_dump).arg("--version").output().await {
            Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
            Err(_) => "unknown".to_string(),
        }
    }

    /// Dumps the database `config` names to `out` (custom format).
    pub async fn dump(&self, config: &crate::pg::PgConfig, out: &Path) -> Result<(), DumpError> {
        let mut cmd = Command::new(&self.pg_dump);
        cmd.arg("--format=custom")
            .arg("--no-owner")
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
        .env("PGCONNECT_TIMEOUT", "5")
        .env("PGAPPNAME", "tenant-plane-dump")
        .env_remove("PGPASSWORD")
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
    cmd.env("PGSSLMODE", tls.mode.as_str())
        .env_remove("PGSSLROOTCERT");
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
    let program = cmd.as_std().get_program().to_string_lossy().to_string();
    let out = cmd.output().await.map_err(|source| DumpError::Spawn {
        program: program.clone(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DumpError::Failed {
            program,
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(2000)
                .collect(),
        })
    }
}
