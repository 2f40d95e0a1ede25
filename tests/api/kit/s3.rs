//! A real S3-compatible server for the tests: `s3s` speaking the S3
//! protocol over HTTP, with `s3s-fs` keeping objects as files under a
//! temporary folder (where a test can read an object's bytes).

use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tenant_plane::config::Settings;

pub const ACCESS_KEY: &str = "tenant-plane-test";
pub const SECRET_KEY: &str = "tenant-plane-test-secret";
pub const BUCKET: &str = "backups";

pub struct S3Server {
    pub endpoint: String,
    root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    /// Points `settings` at this server: `s3://backups/<prefix>`.
    pub fn configure(&self, settings: &mut Settings, prefix: &str) {
        settings.backup.location = Some(format!("s3://{BUCKET}/{prefix}"));
        settings.backup.s3_endpoint = Some(self.endpoint.clone());
        settings.backup.s3_region = Some("us-east-1".into());
        settings.backup.s3_access_key_id = Some(ACCESS_KEY.into());
        settings.backup.s3_secret_access_key = Some(SECRET_KEY.to_string().into());
        settings.backup.s3_allow_http = true;
    }

    /// The file holding an object (`s3://backups/<key>`).
    pub fn object_file(&self, location: &str) -> PathBuf {
        let key = location
            .strip_prefix(&format!("s3://{BUCKET}/"))
            .unwrap_or_else(|| panic!("{location} is not in the bucket"));
        self.root.path().join(BUCKET).join(key)
    }

    /// Every object in the bucket (its files, metadata aside).
    pub fn objects(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "tpbackup") {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.path().join(BUCKET), &mut out);
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server with one bucket on a free port of 127.0.0.1.
pub async fn start() -> S3Server {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
    let service = {
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.build()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    S3Server {
        endpoint,
        root,
        task,
    }
}
