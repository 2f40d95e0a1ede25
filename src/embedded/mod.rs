//! The embedded default: with no catalog database configured, `serve` runs a
//! managed PostgreSQL under the data directory and generates the secrets it
//! needs there.
//!
//! Layout of the data directory:
//! - `postgres/`: the cluster (PGDATA);
//! - `run/`: its socket and log;
//! - `secrets/`: generated secrets, each file mode 0600;
//! - or, instead of `postgres/` and `run/`, a link `cluster` to the
//!   directory that holds them, when the `postgres` user cannot reach the
//!   data directory (see `place_cluster`).
//!
//! With a backup location that is a folder, the cluster also archives its
//! WAL with pgBackRest (`archiving.rs`).
//!
//! Rule: nothing changes the permissions of a directory it did not create.
//! When the `postgres` user cannot reach the data directory, the cluster
//! lives in `embedded.fallback_dir/clusters/<id>`, linked from
//! `<data_dir>/cluster` (`place_cluster`); where even that is closed,
//! start-up stops with one line naming the directory.

pub mod archiving;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;

use crate::config::Settings;
use crate::local_pg::{
    first_blocker, postgres_owner, ClusterAuth, ClusterOptions, LocalCluster, PgBinaries,
};

/// Name of the catalog database inside the embedded cluster.
pub const CATALOG_DATABASE: &str = "tenant_plane";

/// A secret read from the data directory, or made now.
pub struct StoredSecret {
    pub value: SecretString,
    /// True when this call created it.
    pub generated: bool,
}

/// Where a data directory's cluster lives.
#[derive(Debug, Clone)]
pub struct ClusterLayout {
    pub pgdata: PathBuf,
    pub run_dir: PathBuf,
    /// The directory outside the data directory that holds the cluster,
    /// when `<data_dir>/cluster` links to one.
    pub relocated: Option<PathBuf>,
}

/// The name of the link to a cluster kept outside the data directory.
const CLUSTER_LINK: &str = "cluster";

/// Where the cluster of this data directory is (or would be), without
/// changing anything.
pub fn cluster_layout(settings: &Settings) -> anyhow::Result<ClusterLayout> {
    let link = settings.data_dir.join(CLUSTER_LINK);
    if fs::symlink_metadata(&link).is_ok() {
        let home = fs::canonicalize(&link).with_context(|| {
            format!(
                "{} links to a cluster directory that is gone; remove the link to start a new cluster",
                link.display()
            )
        })?;
        return Ok(ClusterLayout {
            pgdata: home.join("postgres"),
            run_dir: home.join("run"),
            relocated: Some(home),
        });
    }
    Ok(ClusterLayout {
        pgdata: settings.data_dir.join("postgres"),
        run_dir: settings.data_dir.join("run"),
        relocated: None,
    })
}

/// Where to start this data directory's cluster. Under root, PostgreSQL runs
/// as `postgres`, which often cannot enter the data directory (a checkout
/// under `/root`, or in a fresh `mktemp -d`). A new cluster then goes to
/// `<embedded.fallback_dir>/clusters/<id>` and the data directory links to
/// it; nothing above the data directory has its permissions changed.
fn place_cluster(settings: &Settings) -> anyhow::Result<ClusterLayout> {
    let layout = cluster_layout(settings)?;
    let owner = postgres_owner()?;
    if layout.relocated.is_some() || layout.pgdata.join("PG_VERSION").exists() || owner.is_none() {
        return Ok(layout);
    }
    let data_dir = &settings.data_dir;
    fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let Some(blocker) = first_blocker(owner, data_dir) else {
        return Ok(layout);
    };
    let clusters = settings.embedded.fallback_dir.join("clusters");
    let unreachable = || {
        anyhow::anyhow!(
            "the postgres user cannot enter {} (on the way to the data directory {}), nor {}: \
             set TENANT_PLANE_DATA_DIR to a directory it can reach, or TENANT_PLANE_EMBEDDED_FALLBACK_DIR to one it can",
            blocker.display(),
            data_dir.display(),
            clusters.display()
        )
    };
    fs::create_dir_all(&clusters).map_err(|_| unreachable())?;
    if first_blocker(owner, &clusters).is_some() {
        return Err(unreachable());
    }
    let home = clusters.join(uuid::Uuid::new_v4().simple().to_string());
    fs::create_dir(&home).with_context(|| format!("cannot create {}", home.display()))?;
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755))?;
    // Says whose cluster this is, for an operator who finds the directory.
    fs::write(home.join("data-dir"), format!("{}\n", data_dir.display()))?;
    std::os::unix::fs::symlink(&home, data_dir.join(CLUSTER_LINK))
        .with_context(|| format!("cannot link {} to {}", data_dir.display(), home.display()))?;
    tracing::info!(
        cluster = %home.display(),
        link = %data_dir.join(CLUSTER_LINK).display(),
        closed = %blocker.display(),
        "the postgres user cannot enter the data directory, so its cluster lives in a directory it can reach"
    );
    cluster_layout(settings)
}

/// The embedded cluster, started, with its catalog URL and, when it
/// archives its WAL, its archive (the stanza still to be made:
/// `archiving::create_stanza`).
pub struct Started {
    pub cluster: LocalCluster,
    pub url: SecretString,
    pub archive: Option<crate::wal_archive::EmbeddedArchive>,
}

/// Starts (initialising on first use) the embedded cluster. Blocks; call it
/// from `spawn_blocking` inside a runtime. The master key must be set.
pub fn start_cluster(settings: &Settings) -> anyhow::Result<Started> {
    let binaries = PgBinaries::locate(settings.embedded.bin_dir.as_deref())?;
    let password = load_or_generate_secret(&settings.data_dir, "postgres_password")?;
    let layout = place_cluster(settings)?;
    let archiving = archiving::prepare(settings, &layout.pgdata, &layout.run_dir)?;
    let options = ClusterOptions {
        pgdata: layout.pgdata,
        run_dir: layout.run_dir,
        port: settings.embedded.port,
        auth: ClusterAuth::Password(password.value),
        durable: true,
        max_connections: 200,
        server_settings: archiving
            .as_ref()
            .map(|a| a.server_settings.clone())
            .unwrap_or_default(),
    };
    let cluster =
        LocalCluster::start(options, binaries).context("starting the embedded PostgreSQL")?;
    let url = cluster.dsn(CATALOG_DATABASE);
    Ok(Started {
        cluster,
        url,
        archive: archiving.map(|a| a.archive),
    })
}

/// The catalog URL of an embedded cluster that a running `serve` started, so
/// that CLI commands reach the same catalog. `None` when it is not running.
pub fn running_catalog_url(settings: &Settings) -> anyhow::Result<Option<SecretString>> {
    let pid_file = cluster_layout(settings)?.pgdata.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(None);
    };
    // postmaster.pid: pid, data directory, start time, port, ...
    let Some(port) = text
        .lines()
        .nth(3)
        .and_then(|l| l.trim().parse::<u16>().ok())
    else {
        return Ok(None);
    };
    let password = read_stored_secret(&settings.data_dir, "postgres_password")?
        .context("the embedded cluster's password is missing from the data directory")?;
    Ok(Some(SecretString::from(format!(
        "host=127.0.0.1 port={port} user={} password={} dbname={CATALOG_DATABASE} sslmode=disable",
        crate::local_pg::SUPERUSER,
        secrecy::ExposeSecret::expose_secret(&password)
    ))))
}

/// Fills in what a CLI command needs to reach the catalog a `serve` on the
/// same data directory uses: the embedded cluster's URL and the master key.
pub fn resolve_for_cli(settings: &mut Settings) -> anyhow::Result<()> {
    if settings.database_url.is_none() {
        settings.database_url = Some(running_catalog_url(settings)?.context(
            "no catalog: set TENANT_PLANE_DATABASE_URL, or start `tenant-plane serve` on this data directory first",
        )?);
    }
    if settings.master_key.is_none() {
        settings.master_key = Some(read_stored_secret(&settings.data_dir, "master_key")?.context(
            "no master key: set TENANT_PLANE_MASTER_KEY, or start `tenant-plane serve` on this data directory first",
        )?);
    }
    Ok(())
}

/// Reads `secrets/<name>` under `data_dir`, creating it with 32 random bytes
/// (64 hex digits) when it does not exist.
pub fn load_or_generate_secret(data_dir: &Path, name: &str) -> anyhow::Result<StoredSecret> {
    let path = secrets_dir(data_dir)?.join(name);
    if let Some(value) = read_secret(&path)? {
        return Ok(StoredSecret {
            value,
            generated: false,
        });
    }
    let value = crate::crypto::random_hex_secret();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(secrecy::ExposeSecret::expose_secret(&value).as_bytes())?;
    Ok(StoredSecret {
        value,
        generated: true,
    })
}

/// Reads a secret kept under `data_dir`, if there is one.
pub fn read_stored_secret(data_dir: &Path, name: &str) -> anyhow::Result<Option<SecretString>> {
    read_secret(&data_dir.join("secrets").join(name))
}

fn read_secret(path: &Path) -> anyhow::Result<Option<SecretString>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(SecretString::from(text.trim().to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn secrets_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("secrets");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}
