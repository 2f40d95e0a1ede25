//! A registered server's operator, who backs it up with pgBackRest on
//! their own: their repository (a folder, or the test S3 server's bucket
//! over HTTPS), their config, and the body that tells tenant-plane of it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{json, Value};

use crate::cluster::{start_extra_with, ExtraCluster};
use crate::kit::pitr::{give, operator_pgbackrest};
use crate::kit::s3::{self, S3Server};

pub const STANZA: &str = "ops";
pub const PASS: &str = "the-operators-own-passphrase";

/// The operator's repository: the lines of their own pgBackRest config
/// that find it, and how it is registered with tenant-plane.
pub struct OperatorRepo {
    pub conf_lines: String,
    pub registration: Value,
}

pub fn folder_repo(repo: &Path) -> OperatorRepo {
    give(repo);
    OperatorRepo {
        conf_lines: format!("repo1-path={}\n", repo.display()),
        registration: json!({ "repository": { "type": "posix", "path": repo.display().to_string() } }),
    }
}

/// A repository in the test S3 server's bucket, under `/ops-repo`, over
/// HTTPS with the server's CA (in `work`, for the operator's config).
pub fn bucket_repo(s3: &S3Server, work: &Path) -> OperatorRepo {
    let ca = s3.ca_pem.clone().expect("an HTTPS server");
    let ca_file = work.join("s3-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    give(&ca_file);
    let port = s3.endpoint.rsplit(':').next().unwrap();
    OperatorRepo {
        conf_lines: format!(
            "repo1-type=s3\nrepo1-path=/ops-repo\nrepo1-s3-bucket={bucket}\nrepo1-s3-endpoint=localhost\n\
             repo1-storage-port={port}\nrepo1-s3-region=us-east-1\nrepo1-s3-key={key}\n\
             repo1-s3-key-secret={secret}\nrepo1-s3-uri-style=path\nrepo1-storage-ca-file={ca}\n",
            bucket = s3::BUCKET,
            key = s3::ACCESS_KEY,
            secret = s3::SECRET_KEY,
            ca = ca_file.display(),
        ),
        registration: json!({
            "repository": {
                "type": "s3", "bucket": s3::BUCKET, "endpoint": format!("localhost:{port}"),
                "region": "us-east-1", "path": "/ops-repo", "uri_style": "path", "ca_pem": ca,
                "access_key_id": s3::ACCESS_KEY, "secret_access_key": s3::SECRET_KEY,
            },
        }),
    }
}

/// The registration body: the stanza, the passphrase, the repository.
pub fn body(repo: &OperatorRepo, stanza: &str, pass: &str) -> Value {
    let mut body = repo.registration.clone();
    body["stanza"] = stanza.into();
    body["cipher_pass"] = pass.into();
    body
}

/// A server archiving into `repo` with the operator's own config, its
/// stanza made; and the config's path.
pub fn archived_server(repo: &OperatorRepo, work: &Path) -> (ExtraCluster, std::path::PathBuf) {
    give(work);
    let conf = work.join("pgbackrest.conf");
    let extra = start_extra_with(|root| {
        let text = format!(
            "[global]\n{lines}repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={PASS}\n\
             lock-path={work}/lock\nlog-path={work}/log\nlog-level-console=off\nlog-level-file=off\n\
             log-level-stderr=warn\nstart-fast=y\n\n[{STANZA}]\npg1-path={root}/pgdata\npg1-socket-path={root}/run\n",
            lines = repo.conf_lines,
            work = work.display(),
            root = root.display(),
        );
        std::fs::write(&conf, text).unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
        give(&conf);
        vec![
            "archive_mode=on".into(),
            format!(
                "archive_command=pgbackrest --config={} --stanza={STANZA} archive-push %p",
                conf.display()
            ),
            "archive_timeout=5".into(),
        ]
    });
    let port = format!("--pg1-port={}", extra.server.port());
    operator_pgbackrest(&conf, STANZA, "stanza-create", &[port]);
    (extra, conf)
}
