//! The embedded cluster's WAL archiving: with a backup location, the
//! cluster pushes every WAL segment with pgBackRest to `<location>/pgbackrest`
//! (stanza `tenant-plane`), encrypted: a folder, or the same bucket as the
//! backups under that prefix, reached over HTTPS with the same endpoint,
//! key and CA.
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

use crate::config::{Bucket, Settings};
use crate::local_pg::first_blocker;
use crate::wal_archive::{
    Archive, ArchiveRecord, EmbeddedArchive, EmbeddedSetup, PgBackRest, Repository, S3Key,
    UriStyle, EMBEDDED_STANZA,
};

/// What start-up needs to turn archiving on, made before the cluster starts.
pub struct Archiving {
    pub archive: EmbeddedArchive,
    /// `-c` settings for the server's command line.
    pub server_settings: Vec<String>,
}

/// Archiving for this start, or `None` without a backup location. A
/// missing pgBackRest, a folder the `postgres` user cannot reach, or a
/// bucket pgBackRest cannot reach, is said, and the cluster runs without
/// archiving (backups still work).
pub fn prepare(
    settings: &Settings,
    pgdata: &Path,
    run_dir: &Path,
) -> anyhow::Result<Option<Archiving>> {
    if settings.backup.location.is_none() {
        return Ok(None);
    }
    let pgbackrest = match PgBackRest::locate() {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "point-in-time restore is off: the embedded cluster cannot archive its WAL");
            return Ok(None);
        }
    };
    let (repository, s3_key) = match settings.backup.bucket() {
        Some(bucket) => match in_bucket(&bucket, settings.backup.s3_ca_file.as_deref())? {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(bucket = %bucket.name, "point-in-time restore is off: {why} (backups to the bucket still work)");
                return Ok(None);
            }
        },
        None => match in_folder(settings, &pgbackrest)? {
            Some(repository) => (repository, None),
            None => return Ok(None),
        },
    };
    let work_dir = run_dir.join("pgbackrest");
    pgbackrest.make_owned_dir(&work_dir)?;
    for value in [pgdata, run_dir] {
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
            repository,
        },
        cipher_pass: cipher_pass(settings)?,
        s3_key,
    };
    if let Some(problem) = archive.problem() {
        anyhow::bail!("the WAL archive's repository: {problem}");
    }
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

/// `<folder>/pgbackrest`, made for the `postgres` user; `None` (said)
/// when that user cannot reach the folder.
fn in_folder(settings: &Settings, pgbackrest: &PgBackRest) -> anyhow::Result<Option<Repository>> {
    let folder = settings
        .backup
        .folder()
        .context("a backup location is a folder or a bucket")?;
    let folder = std::path::absolute(&folder)
        .with_context(|| format!("resolving the backup location {}", folder.display()))?;
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
    let repo = folder.join("pgbackrest");
    pgbackrest.make_owned_dir(&repo)?;
    if repo.display().to_string().contains('\'') {
        anyhow::bail!(
            "{} holds a quote, which a server setting cannot",
            repo.display()
        );
    }
    Ok(Some(Repository::Posix { path: repo }))
}

/// `s3://<bucket>/<prefix>/pgbackrest`, reached as the backups reach the
/// bucket; the inner `Err` says why pgBackRest cannot reach it.
fn in_bucket(
    bucket: &Bucket,
    ca_file: Option<&Path>,
) -> anyhow::Result<Result<(Repository, Option<S3Key>), String>> {
    let region = bucket.region.clone().unwrap_or_else(|| "us-east-1".into());
    // object_store names the bucket in the path when given an endpoint,
    // and so must pgBackRest, which cannot resolve `bucket.localhost`.
    let (endpoint, uri_style) = match &bucket.endpoint {
        None => (format!("s3.{region}.amazonaws.com"), UriStyle::Host),
        Some(url) => match url.strip_prefix("https://") {
            Some(host) => (host.trim_end_matches('/').to_string(), UriStyle::Path),
            None => {
                return Ok(Err(format!(
                    "pgBackRest reaches a bucket only over HTTPS, and the endpoint is {url}"
                )))
            }
        },
    };
    let (Some(access_key_id), Some(secret_access_key)) =
        (&bucket.access_key_id, &bucket.secret_access_key)
    else {
        return Ok(Err(
            "pgBackRest needs the bucket's access key (TENANT_PLANE_BACKUP_S3_ACCESS_KEY_ID and _S3_SECRET_ACCESS_KEY, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)".into(),
        ));
    };
    let ca_pem = match ca_file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading the S3 CA file {}", file.display()))?,
        ),
        None => None,
    };
    let prefix = bucket.prefix.trim_matches('/');
    let path = if prefix.is_empty() {
        PathBuf::from("/pgbackrest")
    } else {
        PathBuf::from(format!("/{prefix}/pgbackrest"))
    };
    let repository = Repository::S3 {
        bucket: bucket.name.clone(),
        endpoint,
        region,
        path,
        uri_style,
        ca_pem,
    };
    let key = S3Key {
        access_key_id: access_key_id.clone(),
        secret_access_key: secret_access_key.clone(),
    };
    if let Some(problem) = repository.problem(Some(&key)) {
        return Ok(Err(problem));
    }
    Ok(Ok((repository, Some(key))))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(endpoint: Option<&str>, prefix: &str) -> Bucket {
        Bucket {
            name: "backups".into(),
            prefix: prefix.into(),
            endpoint: endpoint.map(String::from),
            region: None,
            access_key_id: Some("id".into()),
            secret_access_key: Some(SecretString::from("secret".to_string())),
        }
    }

    #[test]
    fn a_bucket_archive_lives_under_the_backups_prefix_at_the_same_endpoint() {
        let (repo, key) = in_bucket(&bucket(Some("https://s3.example.net:9443/"), "a/b"), None)
            .unwrap()
            .unwrap();
        let Repository::S3 {
            endpoint,
            path,
            uri_style,
            region,
            ..
        } = repo
        else {
            panic!("not s3: {repo:?}")
        };
        assert_eq!(endpoint, "s3.example.net:9443");
        assert_eq!(path, PathBuf::from("/a/b/pgbackrest"));
        assert_eq!(uri_style, UriStyle::Path);
        assert_eq!(region, "us-east-1");
        assert_eq!(key.unwrap().access_key_id, "id");
        let (aws, _) = in_bucket(&bucket(None, ""), None).unwrap().unwrap();
        assert!(
            matches!(&aws, Repository::S3 { endpoint, path, uri_style: UriStyle::Host, .. }
                if endpoint == "s3.us-east-1.amazonaws.com" && path == &PathBuf::from("/pgbackrest")),
            "{aws:?}"
        );
    }

    #[test]
    fn a_bucket_pgbackrest_cannot_reach_is_said_not_archived_into() {
        let plain = in_bucket(&bucket(Some("http://127.0.0.1:9000"), "p"), None).unwrap();
        assert!(plain.unwrap_err().contains("only over HTTPS"));
        let with_path = in_bucket(&bucket(Some("https://host/sub"), "p"), None).unwrap();
        assert!(with_path.unwrap_err().contains("endpoint"));
        let mut keyless = bucket(Some("https://host"), "p");
        keyless.secret_access_key = None;
        assert!(in_bucket(&keyless, None)
            .unwrap()
            .unwrap_err()
            .contains("access key"));
        let missing_ca = in_bucket(
            &bucket(Some("https://host"), "p"),
            Some(Path::new("/nonexistent/ca.pem")),
        );
        assert!(
            missing_ca.is_err(),
            "a CA file that cannot be read stops the start"
        );
    }
}
