//! The pgBackRest archive of a server the operator backs up already, as
//! `server add` and `server wal-archive` take it: the stanza and the
//! repository on the command line, the secrets from the environment (so
//! they stay off the command line).

use std::path::PathBuf;

use clap::Args;

use crate::wal_archive::{Archive, ArchiveRecord, Repository, S3Key, UriStyle};

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The server's pgBackRest stanza (restores to a time read its archive).
    #[arg(long)]
    stanza: Option<String>,
    /// The repository is this folder on this machine.
    #[arg(long, conflicts_with = "s3_bucket")]
    repo_path: Option<PathBuf>,
    /// The repository is in this S3 bucket (with --s3-endpoint, --s3-region).
    #[arg(long, requires_all = ["s3_endpoint", "s3_region"])]
    s3_bucket: Option<String>,
    /// The bucket's endpoint: a host, with `:port` when not 443.
    #[arg(long)]
    s3_endpoint: Option<String>,
    #[arg(long)]
    s3_region: Option<String>,
    /// The repository's path in the bucket (default `/`).
    #[arg(long)]
    s3_path: Option<PathBuf>,
    /// Name the bucket in the URL's path instead of its host.
    #[arg(long)]
    s3_path_style: bool,
    /// A file of CA certificates (PEM) the endpoint's certificate chains to.
    #[arg(long)]
    s3_ca_file: Option<PathBuf>,
    /// The repository's cipher passphrase.
    #[arg(long, env = "TENANT_PLANE_ARCHIVE_CIPHER_PASS", hide_env_values = true)]
    cipher_pass: Option<String>,
    /// The access key that reads the bucket.
    #[arg(long, env = "TENANT_PLANE_ARCHIVE_S3_KEY", hide_env_values = true)]
    s3_key: Option<String>,
    #[arg(
        long,
        env = "TENANT_PLANE_ARCHIVE_S3_KEY_SECRET",
        hide_env_values = true
    )]
    s3_key_secret: Option<String>,
}

impl ArchiveArgs {
    /// The archive the arguments name, if they name one, checked as the
    /// API checks it.
    pub fn into_archive(self) -> anyhow::Result<Option<Archive>> {
        let Some(stanza) = self.stanza else {
            if self.repo_path.is_some() || self.s3_bucket.is_some() {
                anyhow::bail!("name the archive's --stanza too");
            }
            return Ok(None);
        };
        let Some(cipher_pass) = self.cipher_pass else {
            anyhow::bail!("the archive's passphrase: TENANT_PLANE_ARCHIVE_CIPHER_PASS");
        };
        let (repository, s3_key) = match (self.repo_path, self.s3_bucket) {
            (Some(path), None) => (Repository::Posix { path }, None),
            (None, Some(bucket)) => {
                let ca_pem = match &self.s3_ca_file {
                    Some(file) => Some(
                        std::fs::read_to_string(file)
                            .map_err(|e| anyhow::anyhow!("--s3-ca-file {}: {e}", file.display()))?,
                    ),
                    None => None,
                };
                let key = match (self.s3_key, self.s3_key_secret) {
                    (Some(access_key_id), Some(secret)) => Some(S3Key {
                        access_key_id,
                        secret_access_key: secret.into(),
                    }),
                    _ => anyhow::bail!(
                        "an S3 repository needs TENANT_PLANE_ARCHIVE_S3_KEY and TENANT_PLANE_ARCHIVE_S3_KEY_SECRET"
                    ),
                };
                let repository = Repository::S3 {
                    bucket,
                    endpoint: self.s3_endpoint.unwrap_or_default(),
                    region: self.s3_region.unwrap_or_default(),
                    path: self.s3_path.unwrap_or_else(|| "/".into()),
                    uri_style: if self.s3_path_style {
                        UriStyle::Path
                    } else {
                        UriStyle::Host
                    },
                    ca_pem,
                };
                (repository, key)
            }
            _ => anyhow::bail!("name the repository: --repo-path, or --s3-bucket"),
        };
        let archive = Archive {
            record: ArchiveRecord { stanza, repository },
            cipher_pass: cipher_pass.into(),
            s3_key,
        };
        if let Some(problem) = archive.problem() {
            anyhow::bail!(problem);
        }
        Ok(Some(archive))
    }
}
