//! Where a stanza's repository is (a folder or an S3 bucket), the
//! credentials that read it, and the `[global]` lines that tell pgBackRest.
//!
//! Rule: every value here ends up on a line of a config file, so each is
//! checked (`problem`) before it is stored, and a multi-line value (a CA
//! certificate) goes to a file of its own beside the config.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Where a stanza's repository is; kept in the catalog as JSON, without
/// its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Repository {
    /// A folder on the control plane's machine (pgBackRest's `posix`).
    Posix {
        /// Its absolute path (`repo1-path`).
        #[schema(value_type = String, pattern = "^/[^\\x00-\\x1F\\x7F]*$")]
        path: PathBuf,
    },
    /// An S3 bucket (pgBackRest's `s3`), reached over HTTPS; the request
    /// that sets it carries the key that reads it.
    S3 {
        /// The bucket (`repo1-s3-bucket`).
        #[schema(pattern = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
        bucket: String,
        /// The endpoint's host, with `:port` when it is not 443
        /// (`repo1-s3-endpoint`, `repo1-storage-port`).
        #[schema(pattern = "^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")]
        endpoint: String,
        /// The region (`repo1-s3-region`).
        #[schema(pattern = "^[a-z0-9-]{1,32}$")]
        region: String,
        /// The repository's path in the bucket (`repo1-path`, default `/`).
        #[serde(default = "root")]
        #[schema(value_type = String, pattern = "^/[^\\x00-\\x1F\\x7F]*$")]
        path: PathBuf,
        /// `host` (default) or `path` (`repo1-s3-uri-style`).
        #[serde(default)]
        uri_style: UriStyle,
        /// CA certificates (PEM) the endpoint's certificate must chain to,
        /// when it is not one the system trusts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 16384)]
        ca_pem: Option<String>,
    },
}

fn root() -> PathBuf {
    PathBuf::from("/")
}

/// How the bucket is named in a request's URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UriStyle {
    /// `https://bucket.endpoint/key`.
    #[default]
    Host,
    /// `https://endpoint/bucket/key`.
    Path,
}

/// The key that reads an S3 repository; sealed in the catalog (its
/// `Debug` shows no secret: `SecretString`'s is redacted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S3Key {
    pub access_key_id: String,
    #[serde(with = "exposed")]
    pub secret_access_key: SecretString,
}

mod exposed {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose_secret())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<SecretString, D::Error> {
        Ok(SecretString::from(String::deserialize(de)?))
    }
}

/// The name of the CA file written beside a config that needs one.
const CA_FILE: &str = "repository-ca.pem";

fn bad_path(field: &str, path: &Path) -> Option<String> {
    if !path.is_absolute() {
        return Some(format!("{field} {} is not absolute", path.display()));
    }
    if path.to_string_lossy().chars().any(control) {
        return Some(format!("{field} holds a control character"));
    }
    None
}

fn control(c: char) -> bool {
    c < ' ' || c == '\x7f'
}

/// Whether `value` has `len` characters, each of them `ok`.
fn matches(value: &str, ok: impl Fn(char) -> bool, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&value.chars().count()) && value.chars().all(ok)
}

impl Repository {
    /// Why this repository (read with `key`) cannot be used, if it cannot.
    pub fn problem(&self, key: Option<&S3Key>) -> Option<String> {
        match (self, key) {
            (Self::Posix { .. }, Some(_)) => {
                Some("an access key is for an s3 repository only".into())
            }
            (Self::Posix { path }, None) => bad_path("repository.path", path),
            (Self::S3 { .. }, None) => Some("an s3 repository needs an access key".into()),
            (
                Self::S3 {
                    bucket,
                    endpoint,
                    region,
                    path,
                    ca_pem,
                    ..
                },
                Some(key),
            ) => {
                let bucket_char =
                    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
                if !matches(bucket, bucket_char, 3..=63)
                    || bucket.starts_with(['.', '-'])
                    || bucket.ends_with(['.', '-'])
                {
                    return Some(
                        "repository.bucket: 3 to 63 lowercase letters, digits, `.` or `-`".into(),
                    );
                }
                if endpoint_parts(endpoint).is_none() {
                    return Some(
                        "repository.endpoint: a host name, with `:port` when not 443".into(),
                    );
                }
                let region_char =
                    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
                if !matches(region, region_char, 1..=32) {
                    return Some("repository.region: lowercase letters, digits and `-`".into());
                }
                if let Some(p) = bad_path("repository.path", path) {
                    return Some(p);
                }
                // A CA that is not one is pgBackRest's to refuse (the
                // archive is read before it is recorded); it goes to a
                // file of its own, never onto a config line.
                if ca_pem
                    .as_ref()
                    .is_some_and(|pem| pem.chars().count() > 16384)
                {
                    return Some("repository.ca_pem: at most 16384 characters".into());
                }
                let key_char = |c: char| !control(c) && c != ' ';
                if !matches(&key.access_key_id, key_char, 1..=256)
                    || !matches(key.secret_access_key.expose_secret(), key_char, 1..=1024)
                {
                    return Some("repository.access_key_id and secret_access_key: without spaces or control characters".into());
                }
                None
            }
        }
    }

    /// The `[global]` lines that find the repository, read with `key`; a
    /// CA certificate is named at `dir/repository-ca.pem` (see `files`).
    pub(super) fn lines(&self, key: Option<&S3Key>, dir: &Path) -> Vec<(String, String)> {
        let mut lines: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| lines.push((k.to_string(), v));
        match self {
            Self::Posix { path } => put("repo1-path", path.display().to_string()),
            Self::S3 {
                bucket,
                endpoint,
                region,
                path,
                uri_style,
                ca_pem,
            } => {
                put("repo1-type", "s3".into());
                put("repo1-path", path.display().to_string());
                put("repo1-s3-bucket", bucket.clone());
                let (host, port) = endpoint_parts(endpoint).unwrap_or((endpoint, None));
                put("repo1-s3-endpoint", host.to_string());
                if let Some(port) = port {
                    put("repo1-storage-port", port.to_string());
                }
                put("repo1-s3-region", region.clone());
                let style = match uri_style {
                    UriStyle::Host => "host",
                    UriStyle::Path => "path",
                };
                put("repo1-s3-uri-style", style.into());
                if let Some(key) = key {
                    put("repo1-s3-key", key.access_key_id.clone());
                    put(
                        "repo1-s3-key-secret",
                        key.secret_access_key.expose_secret().to_string(),
                    );
                }
                if ca_pem.is_some() {
                    put(
                        "repo1-storage-ca-file",
                        dir.join(CA_FILE).display().to_string(),
                    );
                }
            }
        }
        lines
    }

    /// The files a config in `dir` names besides itself.
    pub(super) fn files(&self, dir: &Path) -> Vec<(PathBuf, String)> {
        match self {
            Self::S3 {
                ca_pem: Some(pem), ..
            } => vec![(dir.join(CA_FILE), pem.clone())],
            _ => Vec::new(),
        }
    }
}

/// `host` and its port, when `endpoint` is `host` or `host:port`.
fn endpoint_parts(endpoint: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match endpoint.split_once(':') {
        Some((host, port)) => (host, Some(port.parse::<u16>().ok().filter(|p| *p > 0)?)),
        None => (endpoint, None),
    };
    let host_char = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    (matches(host, host_char, 1..=253) && !host.starts_with(['.', '-'])).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(endpoint: &str) -> Repository {
        Repository::S3 {
            bucket: "backups".into(),
            endpoint: endpoint.into(),
            region: "eu-west-1".into(),
            path: "/ops".into(),
            uri_style: UriStyle::Path,
            ca_pem: Some("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into()),
        }
    }

    fn key() -> S3Key {
        S3Key {
            access_key_id: "id".into(),
            secret_access_key: SecretString::from("secret".to_string()),
        }
    }

    #[test]
    fn an_s3_repository_names_bucket_endpoint_port_key_and_its_ca_file() {
        let repo = s3("localhost:9443");
        assert_eq!(repo.problem(Some(&key())), None);
        let lines = repo.lines(Some(&key()), Path::new("/w"));
        for expected in [
            ("repo1-type", "s3"),
            ("repo1-path", "/ops"),
            ("repo1-s3-bucket", "backups"),
            ("repo1-s3-endpoint", "localhost"),
            ("repo1-storage-port", "9443"),
            ("repo1-s3-uri-style", "path"),
            ("repo1-s3-key-secret", "secret"),
            ("repo1-storage-ca-file", "/w/repository-ca.pem"),
        ] {
            assert!(
                lines.contains(&(expected.0.to_string(), expected.1.to_string())),
                "{expected:?} in {lines:?}"
            );
        }
        assert_eq!(repo.files(Path::new("/w")).len(), 1);
    }

    #[test]
    fn bad_endpoints_buckets_and_missing_or_misplaced_keys_are_refused() {
        for endpoint in [
            "",
            "host:0",
            "host:70000",
            "a b",
            "-x",
            "host:",
            "h\nrepo2-path=/x",
        ] {
            assert!(s3(endpoint).problem(Some(&key())).is_some(), "{endpoint:?}");
        }
        assert!(s3("s3.eu-west-1.amazonaws.com").problem(None).is_some());
        let posix = Repository::Posix { path: "/r".into() };
        assert!(posix.problem(Some(&key())).is_some());
        assert_eq!(posix.problem(None), None);
        let Repository::S3 {
            endpoint,
            region,
            path,
            uri_style,
            ca_pem,
            ..
        } = s3("e")
        else {
            unreachable!()
        };
        for bucket in ["ab", "Upper", "-lead", "trail.", "a/b"] {
            let repo = Repository::S3 {
                bucket: bucket.into(),
                endpoint: endpoint.clone(),
                region: region.clone(),
                path: path.clone(),
                uri_style,
                ca_pem: ca_pem.clone(),
            };
            assert!(repo.problem(Some(&key())).is_some(), "{bucket:?}");
        }
    }
}
