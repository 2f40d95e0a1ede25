//! Where backups are kept (`backup.location`): a local folder or an
//! S3-compatible bucket, both through `object_store`. Objects are written
//! as a stream (a multipart upload for a bucket) and read as one, so
//! memory stays flat however large a tenant is. Each object is
//! `<prefix>/<tenant id>/<UTC time>-<backup id>.tpbackup`.
//!
//! Rules:
//! - An object appears only once it is whole: a write that fails aborts its
//!   upload, so nothing partial is left in the location.
//! - Every upload and download hashes every byte (SHA-256), so the catalog
//!   records an object's digest and a restore checks it before decrypting.

use std::io::{Read, Write};
use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::BackupError;
use crate::config::BackupSettings;
use crate::domain::TenantId;

/// An object written: its address, size and SHA-256 (of the bytes stored).
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub location: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Clone)]
pub struct BackupStore {
    store: Arc<dyn ObjectStore>,
    /// The folder or bucket prefix inside the store.
    prefix: ObjectPath,
    /// `file:///…` or `s3://bucket`, before `prefix`.
    root_url: String,
}

impl std::fmt::Debug for BackupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupStore({}/{})", self.root_url, self.prefix)
    }
}

impl BackupStore {
    /// Opens the configured location (checked by the settings already).
    pub fn open(settings: &BackupSettings) -> Result<Option<Self>, BackupError> {
        let Some(location) = settings.location.as_deref() else {
            return Ok(None);
        };
        let invalid = |e: object_store::Error| BackupError::Location(e.to_string());
        if let Some(bucket) = settings.bucket() {
            let mut options = object_store::ClientOptions::new();
            if let Some(file) = &settings.s3_ca_file {
                let pem = std::fs::read(file)?;
                for certificate in
                    object_store::Certificate::from_pem_bundle(&pem).map_err(invalid)?
                {
                    options = options.with_root_certificate(certificate);
                }
            }
            // `from_env`'s reading of `AWS_*`, after the client options:
            // setting those replaces what the variables set.
            let mut builder =
                object_store::aws::AmazonS3Builder::new().with_client_options(options);
            for (key, value) in std::env::vars() {
                if let Some(key) = key.strip_prefix("AWS_") {
                    if let Ok(config_key) = format!("aws_{}", key.to_ascii_lowercase()).parse() {
                        builder = builder.with_config(config_key, value);
                    }
                }
            }
            builder = builder.with_bucket_name(&bucket.name);
            if let Some(endpoint) = &bucket.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &bucket.region {
                builder = builder.with_region(region);
            }
            if let Some(id) = &bucket.access_key_id {
                builder = builder.with_access_key_id(id);
            }
            if let Some(secret) = &bucket.secret_access_key {
                builder = builder.with_secret_access_key(secret.expose_secret());
            }
            if settings.s3_allow_http {
                builder = builder.with_allow_http(true);
            }
            return Ok(Some(Self {
                store: Arc::new(builder.build().map_err(invalid)?),
                prefix: ObjectPath::from(bucket.prefix.as_str()),
                root_url: format!("s3://{}", bucket.name),
            }));
        }
        let dir = std::path::PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        std::fs::create_dir_all(&dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(invalid)?;
        Ok(Some(Self {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            root_url: format!("file://{}", dir.display()),
        }))
    }

    /// Where a new backup of `tenant` goes.
    pub fn key_for(&self, tenant: TenantId, backup: Uuid, reason: &str) -> ObjectPath {
        let name = format!(
            "{}-{backup}-{reason}.tpbackup",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        let mut parts: Vec<String> = self
            .prefix
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        parts.push(tenant.to_string());
        parts.push(name);
        ObjectPath::from_iter(parts)
    }

    /// The address of an object, as recorded and shown.
    pub fn url_of(&self, key: &ObjectPath) -> String {
        format!("{}/{key}", self.root_url)
    }

    /// The object an address names, if it is in this location.
    pub fn key_of(&self, url: &str) -> Option<ObjectPath> {
        let rest = url.strip_prefix(&self.root_url)?.strip_prefix('/')?;
        ObjectPath::parse(rest).ok()
    }

    /// Streams what `write` writes into the object `key`, from a blocking
    /// thread (the archive and its encryption are synchronous code); the
    /// object appears only once it is whole.
    pub async fn upload<T: Send + 'static>(
        &self,
        key: &ObjectPath,
        write: impl FnOnce(&mut dyn Write) -> Result<T, BackupError> + Send + 'static,
    ) -> Result<(T, StoredObject), BackupError> {
        let upload = object_store::buffered::BufWriter::new(self.store.clone(), key.clone());
        let location = self.url_of(key);
        let handle = tokio::runtime::Handle::current();
        let written = tokio::task::spawn_blocking(move || {
            let _runtime = handle.enter();
            let mut sink = Hashing::new(tokio_util::io::SyncIoBridge::new(upload));
            match write(&mut sink) {
                Ok(value) => {
                    sink.inner.shutdown()?;
                    Ok((value, sink.bytes, hex::encode(sink.hasher.finalize())))
                }
                Err(e) => {
                    // Never leave a partial object behind.
                    let mut upload = sink.inner.into_inner();
                    let _ = handle.block_on(upload.abort());
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| BackupError::Io(std::io::Error::other(e)))??;
        let (value, bytes, sha256) = written;
        Ok((
            value,
            StoredObject {
                location,
                bytes,
                sha256,
            },
        ))
    }

    /// Streams the object `key` into `read` on a blocking thread; returns
    /// what `read` returns, with the SHA-256 of the bytes read.
    pub async fn download<T: Send + 'static>(
        &self,
        key: &ObjectPath,
        read: impl FnOnce(&mut dyn Read) -> Result<T, BackupError> + Send + 'static,
    ) -> Result<(T, String), BackupError> {
        let got = self.store.get(key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => BackupError::Missing(self.url_of(key)),
            other => BackupError::Location(other.to_string()),
        })?;
        let stream = got.into_stream().map_err(std::io::Error::other);
        let reader = tokio_util::io::StreamReader::new(stream);
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _runtime = handle.enter();
            let mut source = Hashing::new(tokio_util::io::SyncIoBridge::new(reader));
            let value = read(&mut source)?;
            // Whatever `read` left unread still counts for the digest.
            std::io::copy(&mut source, &mut std::io::sink())?;
            Ok((value, hex::encode(source.hasher.finalize())))
        })
        .await
        .map_err(|e| BackupError::Io(std::io::Error::other(e)))?
    }

    pub async fn delete(&self, key: &ObjectPath) -> Result<(), BackupError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BackupError::Location(e.to_string())),
        }
    }
}

/// Counts and hashes the bytes going through.
struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
}

impl<T: Write> Write for Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}
