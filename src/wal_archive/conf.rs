//! A server's archive (stanza, repository, passphrase) and the pgBackRest
//! config files written for it: one for the embedded cluster (archive-push
//! and backups), one for each recovery (reading only).

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::repository::{Repository, S3Key};

/// The stanza of the embedded default's cluster.
pub const EMBEDDED_STANZA: &str = "tenant-plane";

/// What the catalog keeps in the clear about an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    pub stanza: String,
    pub repository: Repository,
}

/// The sealed part.
#[derive(Serialize, Deserialize)]
struct ArchiveSecrets {
    cipher_pass: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s3_key: Option<S3Key>,
}

/// A server's archive: its stanza, its repository and the passphrase that
/// opens it.
#[derive(Clone)]
pub struct Archive {
    pub record: ArchiveRecord,
    pub cipher_pass: SecretString,
    /// The key that reads an S3 repository.
    pub s3_key: Option<S3Key>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl Archive {
    /// The secrets as the catalog seals them (JSON).
    pub fn secrets_json(&self) -> String {
        serde_json::to_string(&ArchiveSecrets {
            cipher_pass: self.cipher_pass.expose_secret().to_string(),
            s3_key: self.s3_key.clone(),
        })
        .expect("plain strings serialize")
    }

    /// An archive from the catalog's record and its opened secrets.
    pub fn from_parts(record: ArchiveRecord, secrets: &str) -> Result<Self, serde_json::Error> {
        let secrets: ArchiveSecrets = serde_json::from_str(secrets)?;
        Ok(Self {
            record,
            cipher_pass: SecretString::from(secrets.cipher_pass),
            s3_key: secrets.s3_key,
        })
    }

    /// Why this archive cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !valid_stanza(&self.record.stanza) {
            return Some("stanza: 1 to 64 letters, digits, `-` or `_`".into());
        }
        let pass = self.cipher_pass.expose_secret();
        let count = pass.chars().count();
        if count == 0 || count > 1024 || pass.chars().any(|c| c < ' ' || c == '\x7f') {
            return Some(
                "cipher_pass: 1 to 1024 characters, none of them a control character".into(),
            );
        }
        self.record.repository.problem(self.s3_key.as_ref())
    }

    /// The files a config in `dir` names besides itself (a CA certificate).
    pub fn files(&self, dir: &Path) -> Vec<(PathBuf, String)> {
        self.record.repository.files(dir)
    }

    /// The `[global]` lines that find and open the repository, for a
    /// config in `dir`.
    fn repository_lines(&self, dir: &Path) -> Vec<(String, String)> {
        let mut lines = self.record.repository.lines(self.s3_key.as_ref(), dir);
        lines.push(("repo1-cipher-type".into(), "aes-256-cbc".into()));
        lines.push((
            "repo1-cipher-pass".into(),
            self.cipher_pass.expose_secret().to_string(),
        ));
        lines
    }
}

/// Where pgBackRest keeps its locks and logs for one use.
fn work_lines(work_dir: &Path) -> Vec<(String, String)> {
    vec![
        (
            "lock-path".into(),
            work_dir.join("lock").display().to_string(),
        ),
        (
            "log-path".into(),
            work_dir.join("log").display().to_string(),
        ),
        (
            "spool-path".into(),
            work_dir.join("spool").display().to_string(),
        ),
        ("log-level-console".into(), "off".into()),
        ("log-level-stderr".into(), "warn".into()),
        ("log-level-file".into(), "off".into()),
    ]
}

/// The embedded cluster's config: it pushes WAL and takes backups.
pub struct EmbeddedSetup {
    pub archive: Archive,
    pub pgdata: PathBuf,
    pub socket_dir: PathBuf,
    /// Locks and logs, a folder the cluster's owner can write.
    pub work_dir: PathBuf,
    /// Full backups kept (`repo1-retention-full`); WAL older than the
    /// oldest kept backup is expired with it.
    pub retention_full: u32,
}

impl EmbeddedSetup {
    /// The config file's text.
    pub fn render(&self) -> Result<String, String> {
        let mut global = self.archive.repository_lines(&self.work_dir);
        global.push((
            "repo1-retention-full".into(),
            self.retention_full.max(1).to_string(),
        ));
        global.extend(work_lines(&self.work_dir));
        global.push(("compress-type".into(), "lz4".into()));
        global.push(("start-fast".into(), "y".into()));
        let stanza = vec![
            ("pg1-path".into(), self.pgdata.display().to_string()),
            (
                "pg1-socket-path".into(),
                self.socket_dir.display().to_string(),
            ),
            ("pg1-user".into(), crate::local_pg::SUPERUSER.to_string()),
        ];
        render(&self.archive.record.stanza, &global, &stanza)
    }
}

/// A recovery's config: it reads the repository and restores into `pgdata`.
pub fn render_for_recovery(
    archive: &Archive,
    pgdata: &Path,
    work_dir: &Path,
) -> Result<String, String> {
    let mut global = archive.repository_lines(work_dir);
    global.extend(work_lines(work_dir));
    let stanza = vec![("pg1-path".into(), pgdata.display().to_string())];
    render(&archive.record.stanza, &global, &stanza)
}

/// An ini file; a value that would break a line is refused.
fn render(
    stanza: &str,
    global: &[(String, String)],
    section: &[(String, String)],
) -> Result<String, String> {
    if !valid_stanza(stanza) {
        return Err(format!("{stanza:?} is not a stanza name"));
    }
    let mut out = String::from("[global]\n");
    for (key, value) in global {
        line(&mut out, key, value)?;
    }
    out.push_str(&format!("\n[{stanza}]\n"));
    for (key, value) in section {
        line(&mut out, key, value)?;
    }
    Ok(out)
}

fn line(out: &mut String, key: &str, value: &str) -> Result<(), String> {
    if value.contains(['\n', '\r']) || value.is_empty() {
        return Err(format!("{key} cannot be {value:?}"));
    }
    out.push_str(&format!("{key}={value}\n"));
    Ok(())
}

/// Letters, digits, `-` and `_`: a stanza is a name in paths and commands.
pub fn valid_stanza(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(path: &str) -> Archive {
        Archive {
            record: ArchiveRecord {
                stanza: EMBEDDED_STANZA.into(),
                repository: Repository::Posix { path: path.into() },
            },
            cipher_pass: SecretString::from("pass".to_string()),
            s3_key: None,
        }
    }

    #[test]
    fn the_embedded_config_names_the_repository_the_cipher_and_the_cluster() {
        let setup = EmbeddedSetup {
            archive: archive("/backups/pgbackrest"),
            pgdata: "/data/postgres".into(),
            socket_dir: "/data/run".into(),
            work_dir: "/data/run/pgbackrest".into(),
            retention_full: 4,
        };
        let text = setup.render().unwrap();
        for expected in [
            "repo1-path=/backups/pgbackrest\n",
            "repo1-cipher-type=aes-256-cbc\n",
            "repo1-cipher-pass=pass\n",
            "repo1-retention-full=4\n",
            "[tenant-plane]\npg1-path=/data/postgres\n",
            "pg1-socket-path=/data/run\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
    }

    #[test]
    fn a_value_that_would_break_the_file_and_a_strange_stanza_are_refused() {
        let bad = render_for_recovery(
            &archive("/a\nrepo2-path=/b"),
            Path::new("/x"),
            Path::new("/w"),
        );
        assert!(bad.is_err());
        let mut odd = archive("/a");
        odd.record.stanza = "a]b".into();
        assert!(render_for_recovery(&odd, Path::new("/x"), Path::new("/w")).is_err());
    }

    #[test]
    fn secrets_round_trip_through_their_sealed_json() {
        let original = archive("/a");
        let back = Archive::from_parts(original.record.clone(), &original.secrets_json()).unwrap();
        assert_eq!(back.cipher_pass.expose_secret(), "pass");
    }
}
