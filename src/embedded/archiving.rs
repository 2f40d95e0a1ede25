//! The embedded cluster's WAL archiving: with a backup location that is a
//! folder, the cluster pushes every WAL segment with pgBackRest to
//! `<location>/pgbackrest` (stanza `tenant-plane`), encrypted.
//!
//! Rules:
//! - The repository's passphrase is derived from the master key the first
//!   time and kept in `secrets/pgbackrest_cipher_pass`: the repository
//!   outlives a master key rotation.
//! - Archiving is set on the server's command line at each start, never
//!   written into its config files, so a restored copy of the cluster
//!   does not push into this repository.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;

use crate::config::Settings;
use crate::local_pg::first_blocker;
use crate::wal_archive::{
    Archive, ArchiveRecord, EmbeddedArchive, EmbeddedSetup, PgBackRest, Repository, EMBEDDED_STANZA,
};

/// What start-up needs to turn archiving on, made before the cluster starts.
pub struct Archiving {
    pub archive: EmbeddedArchive,
    /// `-c` settings for the server's command line.
    pub server_settings: Vec<String>,
}

/// Archiving for this start, or `None` without a folder location. A
/// missing pgBackRest, or a location the `postgres` user cannot reach, is
/// said, and the cluster runs without archiving (backups still work).
pub fn prepare(
    settings: &Settings,
    pgdata: &Path,
    run_dir: &Path,
) -> anyhow::Result<Option<Archiving>> {
    let Some(folder) = settings.backup.folder() else {
        if settings.backup.location.is_some() {
            tracing::warn!("point-in-time restore is off: the embedded cluster archives its WAL only into a folder backup location for now (backups to the bucket still work)");
        }
        return Ok(None);
    };
    let pgbackrest = match PgBackRest::locate() {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "point-in-time restore is off: the embedded cluster cannot archive its WAL");
            return Ok(None);
        }
    };
    let folder = std::path::absolute(&folder)
        .with_context(|| format!("resolving the backup location {}", folder.display()))?;
    let repo = folder.join("pgbackrest");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create the backup location {}", folder.display()))?;
    if let Some(blocker) = first_blocker(pgbackrest.owner(), &folder) {
        // Backups still go there; only the WAL archive cannot.
        tracing::warn!(
            location = %folder.display(),
            closed = %blocker.display(),
            "point-in-time restore is off: the postgres user cannot reach the backup location, so the embedded cluster cannot archive its WAL there (put the location where it can, or `chmod o+x` the folder named)"
        );
        return Ok(None);
    }
    pgbackrest.make_owned_dir(&repo)?;
    let work_dir = run_dir.join("pgbackrest");
    pgbackrest.make_owned_dir(&work_dir)?;
    for value in [&repo, pgdata, run_dir] {
        if value.display().to_string().contains('\'') {
            anyhow::bail!(
                "{} holds a quote, which a server setting cannot",
                value.display()
            );
        }
    }
    let archive = Archive {
        record: ArchiveRecord {
            stanza: EMBEDDED_STANZA.into(),
            repository: Repository::Posix { path: repo },
        },
        cipher_pass: cipher_pass(settings)?,
        s3_key: None,
    };
    let setup = EmbeddedSetup {
        archive: archive.clone(),
        pgdata: pgdata.to_path_buf(),
        socket_dir: run_dir.to_path_buf(),
        work_dir: work_dir.clone(),
        retention_full: settings.backup.keep_weekly.max(1),
    };
    let conf = work_dir.join("pgbackrest.conf");
    let text = setup
        .render()
        .map_err(|e| anyhow::anyhow!("the pgBackRest configuration: {e}"))?;
    pgbackrest.write_conf(&conf, &text, &archive)?;
    let command = pgbackrest.archive_command(&conf, EMBEDDED_STANZA);
    let server_settings = vec![
        "archive_mode=on".to_string(),
        format!("archive_command={command}"),
        format!(
            "archive_timeout={}",
            settings.backup.archive_timeout_secs.max(1)
        ),
    ];
    Ok(Some(Archiving {
        archive: EmbeddedArchive {
            archive,
            conf,
            pgbackrest,
            port: 0,
        },
        server_settings,
    }))
}

/// The repository's passphrase: kept in the data directory, derived from
/// the master key the first time.
fn cipher_pass(settings: &Settings) -> anyhow::Result<SecretString> {
    let path = settings
        .data_dir
        .join("secrets")
        .join("pgbackrest_cipher_pass");
    if let Some(kept) = super::read_stored_secret(&settings.data_dir, "pgbackrest_cipher_pass")? {
        return Ok(kept);
    }
    let key = settings
        .master_key
        .as_ref()
        .context("the master key is needed to make the WAL archive's passphrase")?;
    let master = crate::crypto::MasterKey::from_hex(key).context("TENANT_PLANE_MASTER_KEY")?;
    let pass = hex::encode(master.derive("pgbackrest repository cipher"));
    write_secret(&path, &pass)?;
    Ok(SecretString::from(pass))
}

fn write_secret(path: &PathBuf, value: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(value.as_bytes())?;
    Ok(())
}

/// After the cluster started: the stanza made (or found valid).
pub async fn create_stanza(archive: &mut EmbeddedArchive, port: u16) -> anyhow::Result<()> {
    archive.port = port;
    archive
        .pgbackrest
        .run(
            &archive.conf,
            EMBEDDED_STANZA,
            "stanza-create",
            &[format!("--pg1-port={port}")],
        )
        .await
        .context("creating the pgBackRest stanza of the embedded cluster")?;
    Ok(())
}
