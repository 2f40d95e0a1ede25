//! A PostgreSQL cluster run from the local server binaries: the embedded
//! default of `serve`, and the throwaway clusters of the test harness.
//!
//! The calls block (they wait for `initdb` and `pg_ctl`); async callers wrap
//! them in `spawn_blocking`.
//!
//! Rules:
//! - PostgreSQL never runs as root: under root, `initdb` and `pg_ctl` run as
//!   the `postgres` user (`owner.rs`), which owns the cluster's directories.
//! - Permissions above the cluster's directories are checked, never changed:
//!   a directory `postgres` cannot reach is an error naming it.

mod binaries;
mod child_env;
mod owner;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::unistd::{Gid, Uid};
use secrecy::{ExposeSecret, SecretString};

pub use binaries::PgBinaries;
pub use child_env::child_env;
pub use owner::{first_blocker, postgres_owner};

#[derive(Debug, thiserror::Error)]
pub enum LocalPgError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found{where_}. \
         Install them: `apt-get install postgresql` on Debian/Ubuntu, \
         `dnf install postgresql-server` on Fedora/RHEL, `brew install postgresql@15` on macOS; \
         or set TENANT_PLANE_DATABASE_URL to an existing server"
    )]
    BinariesMissing { where_: String },
    #[error("running as root, but there is no `postgres` user to run PostgreSQL as (PostgreSQL refuses to run as root); create one with `useradd --system postgres`")]
    NoPostgresUser,
    #[error(
        "the postgres user cannot reach {dir}: it may not enter {blocker}. \
         Put the data directory where it can (for example TENANT_PLANE_DATA_DIR=/var/lib/tenant-plane/data), \
         or let it through with `chmod o+x {blocker}`"
    )]
    Unreachable { dir: PathBuf, blocker: PathBuf },
    #[error("{step} failed: {detail}")]
    Command { step: &'static str, detail: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How clients authenticate over TCP.
#[derive(Clone)]
pub enum ClusterAuth {
    /// Anyone on loopback may connect as any role: throwaway test clusters only.
    Trust,
    /// SCRAM with this superuser password; local socket connections use peer auth.
    Password(SecretString),
}

/// What a cluster is made from.
#[derive(Clone)]
pub struct ClusterOptions {
    /// The cluster's own directory (PGDATA).
    pub pgdata: PathBuf,
    /// Directory for the Unix socket and the server log.
    pub run_dir: PathBuf,
    /// 0 picks a free port at each start.
    pub port: u16,
    pub auth: ClusterAuth,
    /// `false` trades crash safety for speed; only for throwaway clusters.
    pub durable: bool,
    pub max_connections: u32,
    /// More server settings for its command line (`name=value`, the value
    /// as the server should read it, unquoted).
    pub server_settings: Vec<String>,
}

/// A running (or stopped) local cluster. Dropping a running cluster stops it.
pub struct LocalCluster {
    options: ClusterOptions,
    binaries: PgBinaries,
    owner: Option<(Uid, Gid)>,
    port: u16,
    running: bool,
}

/// The superuser every local cluster is initialised with.
pub const SUPERUSER: &str = "postgres";

impl LocalCluster {
    /// Initialises the cluster on first use, then starts it and waits until it
    /// accepts connections.
    pub fn start(mut options: ClusterOptions, binaries: PgBinaries) -> Result<Self, LocalPgError> {
        let owner = postgres_owner()?;
        // The programs run in the run directory, where a relative path would
        // mean something else.
        for dir in [&mut options.pgdata, &mut options.run_dir] {
            *dir = std::path::absolute(&*dir).map_err(|source| LocalPgError::Io {
                what: "cannot resolve",
                path: dir.clone(),
                source,
            })?;
        }
        let mut cluster = Self {
            options,
            binaries,
            owner,
            port: 0,
            running: false,
        };
        cluster.prepare_dirs()?;
        if !cluster.options.pgdata.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        cluster.stop_stale_server();
        cluster.start_server()?;
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pgdata(&self) -> &Path {
        &self.options.pgdata
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.binaries
    }

    /// The uid and gid the server runs as, when we are root.
    pub fn owner(&self) -> Option<(Uid, Gid)> {
        self.owner
    }

    /// A libpq key/value DSN for `dbname` as the superuser, over TCP. The
    /// cluster listens on 127.0.0.1 only and has no certificate: asking for
    /// TLS would cost every connection a round trip for nothing.
    pub fn dsn(&self, dbname: &str) -> SecretString {
        let mut dsn = format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname={dbname} sslmode=disable",
            self.port
        );
        if let ClusterAuth::Password(password) = &self.options.auth {
            dsn.push_str(&format!(" password={}", password.expose_secret()));
        }
        SecretString::from(dsn)
    }

    /// Stops the server (fast shutdown: active sessions are ended, data is flushed).
    pub fn stop(&mut self) -> Result<(), LocalPgError> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let out = self.run_as_owner(
            "pg_ctl stop",
            Command::new(&self.binaries.pg_ctl)
                .arg("-D")
                .arg(&self.options.pgdata)
                .args(["-m", "fast", "-w", "-t", "60", "stop"]),
        )?;
        check("pg_ctl stop", out)
    }

    fn prepare_dirs(&self) -> Result<(), LocalPgError> {
        for dir in [&self.options.pgdata, &self.options.run_dir] {
            fs::create_dir_all(dir).map_err(|source| LocalPgError::Io {
                what: "cannot create",
                path: dir.clone(),
                source,
            })?;
            let perms = fs::Permissions::from_mode(0o700);
            fs::set_permissions(dir, perms).map_err(|source| LocalPgError::Io {
                what: "cannot set permissions on",
                path: dir.clone(),
                source,
            })?;
            if let Some((uid, gid)) = self.owner {
                nix::unistd::chown(dir.as_path(), Some(uid), Some(gid)).map_err(|e| {
                    LocalPgError::Io {
                        what: "cannot hand to the postgres user",
                        path: dir.clone(),
                        source: e.into(),
                    }
                })?;
            }
            // Permissions above the cluster are the caller's; they are
            // checked, never changed.
            if let Some(blocker) = first_blocker(self.owner, dir) {
                return Err(LocalPgError::Unreachable {
                    dir: dir.clone(),
                    blocker,
                });
            }
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), LocalPgError> {
        let mut cmd = Command::new(&self.binaries.initdb);
        cmd.arg("-D")
            .arg(&self.options.pgdata)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C"]);
        if !self.options.durable {
            cmd.arg("--no-sync");
        }
        let pwfile = self.options.run_dir.join("initdb.pw");
        match &self.options.auth {
            ClusterAuth::Trust => {
                cmd.arg("--auth=trust");
            }
            ClusterAuth::Password(password) => {
                self.write_owned(&pwfile, password.expose_secret())?;
                cmd.args(["--auth-host=scram-sha-256", "--auth-local=peer"])
                    .arg(format!("--pwfile={}", pwfile.display()));
            }
        }
        let result = self.run_as_owner("initdb", &mut cmd);
        let _ = fs::remove_file(&pwfile);
        check("initdb", result?)
    }

    /// A server left running by a killed process holds the data directory;
    /// stop it so that this start owns the cluster.
    fn stop_stale_server(&self) {
        if self.options.pgdata.join("postmaster.pid").exists() {
            tracing::warn!(pgdata = %self.options.pgdata.display(), "stopping a PostgreSQL left running by an earlier process");
            let _ = self.run_as_owner(
                "pg_ctl stop",
                Command::new(&self.binaries.pg_ctl)
                    .arg("-D")
                    .arg(&self.options.pgdata)
                    .args(["-m", "fast", "-w", "stop"]),
            );
        }
    }

    fn start_server(&mut self) -> Result<(), LocalPgError> {
        // A free port can be taken between the probe and the start; try a few.
        let attempts = if self.options.port == 0 { 3 } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            let port = match self.options.port {
                0 => free_port()?,
                p => p,
            };
            match self.pg_ctl_start(port) {
                Ok(()) => {
                    self.port = port;
                    self.running = true;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn pg_ctl_start(&self, port: u16) -> Result<(), LocalPgError> {
        // Clients use TCP; the socket is a convenience for psql. A socket
        // path longer than the kernel allows (108 bytes) would stop the
        // server, so a deep directory goes without one.
        let socket_dir = self.options.run_dir.display().to_string();
        let socket_dir = if socket_dir.len() + "/.s.PGSQL.65535".len() < 108 {
            socket_dir
        } else {
            String::new()
        };
        let mut server_options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{socket_dir}' -c max_connections={}",
            self.options.max_connections
        );
        if !self.options.durable {
            server_options
                .push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        // pg_ctl hands these to a shell: each setting is one single-quoted word.
        for setting in &self.options.server_settings {
            server_options.push_str(&format!(" -c '{}'", setting.replace('\'', "'\\''")));
        }
        let log = self.options.run_dir.join("postgres.log");
        let out = self.run_as_owner(
            "pg_ctl start",
            Command::new(&self.binaries.pg_ctl)
                .arg("-D")
                .arg(&self.options.pgdata)
                .arg("-l")
                .arg(&log)
                .arg("-o")
                .arg(server_options)
                .args(["-w", "-t", "60", "start"]),
        )?;
        check("pg_ctl start", out).map_err(|e| match e {
            LocalPgError::Command { step, detail } => LocalPgError::Command {
                step,
                detail: format!("{detail}; server log: {}", tail(&log)),
            },
            other => other,
        })
    }

    fn run_as_owner(&self, step: &'static str, cmd: &mut Command) -> Result<Output, LocalPgError> {
        use std::os::unix::process::CommandExt;
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        // initdb and pg_ctl complain when the working directory is unreadable.
        cmd.current_dir(&self.options.run_dir);
        // The postmaster inherits pg_ctl's environment: none of ours.
        cmd.env_clear().envs(child_env());
        cmd.output().map_err(|e| LocalPgError::Command {
            step,
            detail: e.to_string(),
        })
    }

    fn write_owned(&self, path: &Path, contents: &str) -> Result<(), LocalPgError> {
        let io = |source| LocalPgError::Io {
            what: "cannot write",
            path: path.to_path_buf(),
            source,
        };
        fs::write(path, contents).map_err(io)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
        if let Some((uid, gid)) = self.owner {
            nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|e| io(e.into()))?;
        }
        Ok(())
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "could not stop the local PostgreSQL");
        }
    }
}

/// Asks the kernel for a port that is free right now.
pub fn free_port() -> Result<u16, LocalPgError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| LocalPgError::Io {
            what: "cannot find a free port on",
            path: PathBuf::from("127.0.0.1"),
            source,
        })
}

fn check(step: &'static str, out: Output) -> Result<(), LocalPgError> {
    if out.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if detail.is_empty() {
        detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    Err(LocalPgError::Command {
        step,
        detail: format!("{} ({})", detail, out.status),
    })
}

/// The end of a log file, for error messages.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}
