//! The database servers tenants are placed on: registering one (its DSN is
//! checked by connecting, the role must hold every privilege the service
//! uses (`ADMIN_PRIVILEGES`), its template database is prepared, and its
//! admin password is stored sealed with the master key), and changing its
//! state or budget.
//! Moving tenants off a server (a drain) is the lifecycle's.
//!
//! Rule: a change is a command (`commands.rs`) that takes the `Actor`,
//! writes its audit record first, and tells this replica's router itself.
//!
//! Rule: a server's admin password is stored only sealed with the master
//! key, bound to the server's id (`provisioner::server_password_purpose`),
//! and never returned; the catalog's own server uses the catalog
//! credentials.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

mod archives;
mod commands;

pub use crate::catalog::{DbServer, ServerLoad, ServerPatch, ServerState};
pub use archives::ArchiveChange;

use crate::catalog::{Catalog, CatalogError, NewServer};
use crate::crypto::MasterKey;
use crate::domain::{ServerName, Tier};
use crate::pg::{PgConfig, PgError, RootCerts, SslMode};
use crate::provisioner::{server_password_purpose, ProvisionError, Provisioner};
use crate::route_notices::RouteNotices;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum ServersError {
    #[error("no such database server")]
    NotFound,
    #[error("invalid DSN: {0}")]
    InvalidDsn(String),
    #[error("the server cannot hold tenants: {reason}")]
    Unusable {
        reason: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// The WAL archive an operator named cannot be read from here.
    #[error("the WAL archive cannot be read: {0}")]
    ArchiveUnreadable(String),
}

impl ServersError {
    fn unusable(
        reason: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unusable {
            reason,
            source: Some(Box::new(source)),
        }
    }
}

/// A server to register, as the API or CLI parsed it.
#[derive(Debug, Clone)]
pub struct NewServerInput {
    pub name: ServerName,
    /// `postgres://user:password@host:port` or `host=… user=…`.
    pub dsn: SecretString,
    pub capacity: i32,
    pub connection_budget: Option<i32>,
    pub pinned_tiers: Vec<Tier>,
    /// CA certificates (PEM) the server's certificate must chain to, for
    /// `sslmode=verify-ca` or `verify-full`; the DSN's `sslrootcert` file
    /// does the same from the CLI.
    pub ssl_root_cert: Option<String>,
    /// Registers a server on another host even though its sslmode does not
    /// verify the server's certificate (`disable`, `prefer`, `require`).
    pub allow_unverified_tls: bool,
}

/// Whether a server at `host` is reached without leaving this machine: a
/// loopback address, `localhost`, or a Unix socket directory.
pub fn is_local(host: &str) -> bool {
    host == "localhost"
        || host.starts_with('/')
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What the server list warns of: a server on another host whose
/// certificate is not verified, so its traffic could be intercepted.
pub fn tls_warning(server: &DbServer) -> Option<&'static str> {
    let verified = matches!(server.ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull);
    (!verified && !is_local(&server.host)).then_some(UNVERIFIED)
}

const UNVERIFIED: &str = "sslmode does not verify the server's certificate on a host that \
     is not loopback: its traffic, admin password included, could be intercepted";

#[derive(Clone)]
pub struct Servers {
    catalog: Catalog,
    provisioner: Provisioner,
    master_key: MasterKey,
    routes: RouteNotices,
    /// Reads a WAL archive before it is recorded; `None` without pgBackRest.
    archive_reader: Option<crate::wal_archive::ArchiveReader>,
}

impl Servers {
    pub fn new(
        catalog: Catalog,
        provisioner: Provisioner,
        master_key: MasterKey,
        routes: RouteNotices,
    ) -> Self {
        Self {
            catalog,
            provisioner,
            master_key,
            routes,
            archive_reader: None,
        }
    }

    /// WAL archives are read (checked) with `reader` before they are recorded.
    pub fn with_archive_reader(
        mut self,
        reader: Option<crate::wal_archive::ArchiveReader>,
    ) -> Self {
        self.archive_reader = reader;
        self
    }

    pub async fn list(&self) -> Result<Vec<DbServer>, ServersError> {
        Ok(self.catalog.list_servers().await?)
    }

    /// Every server's measured load against its capacity, the busiest first.
    pub async fn loads(&self) -> Result<Vec<ServerLoad>, ServersError> {
        Ok(self.catalog.server_loads().await?)
    }

    pub async fn get(&self, id: Uuid) -> Result<DbServer, ServersError> {
        self.catalog
            .get_server(id)
            .await?
            .ok_or(ServersError::NotFound)
    }

    /// Changes a server's state, capacity or budget; every replica hears of
    /// it through the catalog's change notice.
    async fn patch(&self, id: Uuid, patch: &ServerPatch) -> Result<DbServer, ServersError> {
        self.catalog
            .update_server(id, patch)
            .await?
            .ok_or(ServersError::NotFound)
    }

    #[tracing::instrument(skip_all, fields(server = %input.name))]
    async fn check_and_record(&self, input: NewServerInput) -> Result<DbServer, ServersError> {
        let invalid = |why: &str| ServersError::InvalidDsn(why.to_string());
        let config = PgConfig::parse(input.dsn.expose_secret()).map_err(|e| match e {
            // Its message could quote the DSN, password and all.
            PgError::Dsn(_) => invalid("the DSN does not parse"),
            e => invalid(&e.to_string()),
        })?;
        let mut tls = config.tls().clone();
        if let Some(pem) = input.ssl_root_cert {
            if tls.roots != RootCerts::None {
                return Err(invalid(
                    "give the CA certificates once: sslrootcert in the DSN or ssl_root_cert",
                ));
            }
            tls.roots = RootCerts::Pem(pem.into());
        }
        tls.check().map_err(|e| invalid(&e.to_string()))?;
        let host = match config.get_hosts() {
            [tokio_postgres::config::Host::Tcp(h)] => h.clone(),
            [tokio_postgres::config::Host::Unix(p)] => p.display().to_string(),
            _ => return Err(invalid("name exactly one host")),
        };
        // Refused before any connection is attempted: the admin password
        // would already be on the wire.
        let verified = matches!(tls.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        if !verified && !is_local(&host) && !input.allow_unverified_tls {
            return Err(ServersError::Unusable {
                reason: "its sslmode does not verify the server's certificate on a host that \
                         is not loopback: use sslmode=verify-ca or verify-full with its CA \
                         certificates, or register it with allow_unverified_tls \
                         (--allow-unverified-tls)",
                source: None,
            });
        }
        let port = match config.get_ports() {
            [] => 5432,
            [p] => *p,
            _ => return Err(invalid("name exactly one port")),
        };
        let user = config
            .get_user()
            .ok_or_else(|| invalid("name the admin user"))?
            .to_string();
        let id = Uuid::now_v7();
        let sealed = config
            .get_password()
            .map(|p| self.master_key.seal(&server_password_purpose(id), p));
        let server = DbServer {
            id,
            name: input.name.as_str().to_string(),
            host,
            port,
            state: ServerState::Active,
            capacity: input.capacity,
            connection_budget: input.connection_budget,
            is_catalog: false,
            admin_user: user,
            admin_password_enc: sealed.clone(),
            pinned_tiers: input
                .pinned_tiers
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            tenants: 0,
            ssl_mode: tls.mode,
            ssl_roots: tls.roots.clone(),
            wal_archive: None,
            storage_capacity_mb: None,
            requests_per_hour_capacity: None,
        };
        self.check(&server).await?;
        let registered = self
            .catalog
            .insert_server(&NewServer {
                id,
                name: server.name.clone(),
                host: server.host.clone(),
                port,
                admin_user: server.admin_user.clone(),
                admin_password_enc: sealed,
                capacity: input.capacity,
                connection_budget: input.connection_budget,
                pinned_tiers: input.pinned_tiers,
                tls,
            })
            .await?;
        tracing::info!(server.id = %id, "registered a database server");
        Ok(registered)
    }

    /// Connects as the admin, checks its rights, and prepares the template.
    async fn check(&self, server: &DbServer) -> Result<(), ServersError> {
        let config = self.provisioner.admin_config(server, "postgres")?;
        let (client, connection) = config
            .connect()
            .await
            .map_err(|e| ServersError::unusable("cannot connect", e))?;
        let driver = tokio::spawn(connection);
        let rights = client
            .query_one(
                "SELECT rolsuper, rolcreatedb, rolcreaterole,
                        pg_has_role(current_user, 'pg_signal_backend', 'USAGE')
                   FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| ServersError::unusable("cannot read the admin role's rights", e))?;
        drop(client);
        let _ = driver.await;
        let missing =
            MissingPrivileges::of(rights.get(0), [rights.get(1), rights.get(2), rights.get(3)]);
        if !missing.0.is_empty() {
            return Err(ServersError::unusable(
                "the admin role lacks privileges the service needs",
                missing,
            ));
        }
        self.provisioner
            .prepare_server(server)
            .await
            .map_err(|e| ServersError::unusable("cannot prepare its template", e))?;
        Ok(())
    }
}

/// Every privilege the admin role needs, with what needs it. A superuser
/// has them all.
pub const ADMIN_PRIVILEGES: [(&str, &str); 3] = [
    (
        "CREATEDB",
        "tenant databases are created, renamed and dropped",
    ),
    ("CREATEROLE", "each tenant has a role of its own"),
    (
        "membership in pg_signal_backend",
        "moves, drains, restores and purges end tenant sessions with pg_terminate_backend",
    ),
];

/// The privileges an admin role lacks, named as `ADMIN_PRIVILEGES` names them.
#[derive(Debug)]
pub struct MissingPrivileges(Vec<(&'static str, &'static str)>);

impl MissingPrivileges {
    fn of(superuser: bool, held: [bool; 3]) -> Self {
        Self(
            ADMIN_PRIVILEGES
                .into_iter()
                .zip(held)
                .filter(|(_, held)| !superuser && !held)
                .map(|(privilege, _)| privilege)
                .collect(),
        )
    }
}

impl std::fmt::Display for MissingPrivileges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named: Vec<String> = self
            .0
            .iter()
            .map(|(privilege, why)| format!("{privilege} ({why})"))
            .collect();
        write!(f, "missing {}", named.join("; "))
    }
}

impl std::error::Error for MissingPrivileges {}

#[cfg(test)]
mod tests {
    use super::{is_local, MissingPrivileges};

    #[test]
    fn a_host_is_local_when_it_is_loopback_localhost_or_a_unix_socket_and_not_otherwise() {
        assert!(is_local("127.0.0.2") && is_local("::1") && is_local("localhost"));
        assert!(is_local("/var/run/postgresql"));
        assert!(!is_local("db.example.invalid") && !is_local("10.0.0.5"));
    }

    #[test]
    fn missing_privileges_name_each_one_a_role_lacks_and_none_for_a_superuser() {
        let text = MissingPrivileges::of(false, [true, true, false]).to_string();
        assert!(
            text.starts_with("missing membership in pg_signal_backend ("),
            "{text}"
        );
        assert!(
            !text.contains("CREATEDB") && !text.contains("CREATEROLE"),
            "{text}"
        );
        let text = MissingPrivileges::of(false, [false, false, true]).to_string();
        assert!(
            text.contains("CREATEDB (") && text.contains("; CREATEROLE ("),
            "{text}"
        );
        assert!(MissingPrivileges::of(true, [false, false, false])
            .0
            .is_empty());
    }
}
