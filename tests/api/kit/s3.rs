//! A real S3-compatible server for the tests: `s3s` speaking the S3
//! protocol over HTTP (or HTTPS, for pgBackRest, which reaches S3 only over
//! TLS), with `s3s-fs` keeping objects as files under a temporary folder
//! (where a test can read an object's bytes). `s3s-fs` names a multipart
//! upload's metadata file after the key in base64, so a key over about 128
//! bytes cannot be uploaded in parts (500): keep prefixes short.

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
    /// Over HTTPS: the CA (PEM) its certificate for `localhost` chains to.
    pub ca_pem: Option<String>,
    root: tempfile::TempDir,
    /// Its own runtime: a test that blocks its thread (waiting on
    /// pgBackRest, say) must not stall the server.
    runtime: Option<tokio::runtime::Runtime>,
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
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Starts a server with one bucket on a free port of 127.0.0.1.
pub async fn start() -> S3Server {
    serve(None)
}

/// Starts one over HTTPS, at `https://localhost:<port>`, with a certificate
/// from a test CA.
pub async fn start_tls() -> S3Server {
    let ca = super::ca::TestCa::new("tenant-plane test S3 CA");
    let (cert, key) = ca.server_cert("localhost");
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let mut server = serve(Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(
        config,
    ))));
    server.ca_pem = Some(ca.pem);
    server
}

fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> S3Server {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
    let service = {
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.build()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = match tls {
        Some(_) => format!("https://localhost:{port}"),
        None => format!("http://127.0.0.1:{port}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let (service, tls) = (service.clone(), tls.clone());
            tokio::spawn(async move {
                let http = ConnBuilder::new(TokioExecutor::new());
                match tls {
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(socket).await {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(socket), service).await;
                    }
                }
            });
        }
    });
    S3Server {
        endpoint,
        ca_pem: None,
        root,
        runtime: Some(runtime),
    }
}
