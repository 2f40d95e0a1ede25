//! How tenant-plane reaches a PostgreSQL server: connection settings with
//! their TLS policy (`PgConfig`). Every connection the service opens, to the
//! catalog, to a registered server or to a tenant's database, goes through
//! `PgConfig::connect` or `PgConfig::manager`, so `sslmode` and
//! `sslrootcert` hold everywhere.

mod closing;
mod dsn;
mod raw;
mod tls;
pub mod wire;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use closing::{ClosingConnection, ClosingSocket, SessionError, CLOSE_WAIT};
pub use raw::{CancelTarget, RawError, RawIo, RawSession};
pub use tls::{RootCerts, SslMode, TlsPolicy};

/// The stream under a connection (TLS or not).
pub type PgStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
/// A connection's driver, to be spawned or polled.
pub type PgConnection = tokio_postgres::Connection<Socket, PgStream>;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the DSN does not parse: {0}")]
    Dsn(String),
    #[error("unknown sslmode `{0}` (disable, prefer, require, verify-ca or verify-full)")]
    SslMode(String),
    #[error("sslrootcert: cannot read {path}: {source}")]
    RootCertFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sslrootcert: {0}")]
    RootCerts(String),
}

/// tokio-postgres settings plus the TLS policy they are used with.
#[derive(Debug, Clone)]
pub struct PgConfig {
    config: tokio_postgres::Config,
    tls: TlsPolicy,
}

impl PgConfig {
    /// Parses a DSN in either libpq form. `sslrootcert` names a file (read
    /// now: the certificates travel with the settings) or `system`.
    pub fn parse(dsn: &str) -> Result<Self, PgError> {
        let split = dsn::split(dsn)?;
        let config = tokio_postgres::Config::from_str(&split.rest)
            .map_err(|e| PgError::Dsn(e.to_string()))?;
        let mode = match split.sslmode.as_deref() {
            None => SslMode::Prefer,
            Some(text) => SslMode::parse(text).ok_or_else(|| PgError::SslMode(text.into()))?,
        };
        let roots = match split.sslrootcert.as_deref() {
            None | Some("") => RootCerts::None,
            Some("system") => RootCerts::System,
            Some(path) => RootCerts::Pem(read_pem(Path::new(path))?),
        };
        let tls = TlsPolicy { mode, roots };
        // Fails now, on a CA file with no certificate in it, rather than at
        // the first connection. (A verify mode without roots is checked by
        // whoever may still add them: the API takes them in the body.)
        if tls.roots != RootCerts::None {
            tls.check()?;
        }
        Ok(Self::new(config, tls))
    }

    pub fn new(mut config: tokio_postgres::Config, tls: TlsPolicy) -> Self {
        config.ssl_mode(tls.mode.wire());
        Self { config, tls }
    }

    pub fn tls(&self) -> &TlsPolicy {
        &self.tls
    }

    /// The same place and credentials under another TLS policy.
    pub fn with_tls(&self, tls: TlsPolicy) -> Self {
        Self::new(self.config.clone(), tls)
    }

    /// Opens one connection; the caller spawns (or polls) its driver.
    pub async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, PgConnection), tokio_postgres::Error> {
        self.config.connect(self.tls.connector()).await
    }

    /// A deadpool manager that opens its connections with this policy.
    pub fn manager(&self, recycling_method: RecyclingMethod) -> Manager {
        Manager::from_config(
            self.config.clone(),
            self.tls.connector(),
            ManagerConfig { recycling_method },
        )
    }
}

impl Deref for PgConfig {
    type Target = tokio_postgres::Config;

    fn deref(&self) -> &Self::Target {
        &self.config
    }
}

impl DerefMut for PgConfig {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.config
    }
}

fn read_pem(path: &Path) -> Result<Arc<str>, PgError> {
    std::fs::read_to_string(path)
        .map(Arc::from)
        .map_err(|source| PgError::RootCertFile {
            path: path.display().to_string(),
            source,
        })
}
