//! The database servers tenants are placed on: registering one (its DSN is
//! checked by connecting, the role must be able to create databases and
//! roles, its template database is prepared, and its admin password is
//! stored sealed with the master key), and changing its state or budget.
//! Moving tenants off a server (a drain) is the lifecycle's.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::catalog::{Catalog, CatalogError, DbServer, NewServer, ServerPatch, ServerState};
use crate::crypto::MasterKey;
use crate::domain::{ServerName, Tier};
use crate::pg::{PgConfig, PgError, RootCerts};
use crate::provisioner::{server_password_purpose, ProvisionError, Provisioner};

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
}

#[derive(Clone)]
pub struct Servers {
    catalog: Catalog,
    provisioner: Provisioner,
    master_key: MasterKey,
}

impl Servers {
    pub fn new(catalog: Catalog, provisioner: Provisioner, master_key: MasterKey) -> Self {
        Self {
            catalog,
            provisioner,
            master_key,
        }
    }

    pub async fn list(&self) -> Result<Vec<DbServer>, ServersError> {
        Ok(self.catalog.list_servers().await?)
    }

    pub async fn get(&self, id: Uuid) -> Result<DbServer, ServersError> {
        self.catalog
            .get_server(id)
            .await?
            .ok_or(ServersError::NotFound)
    }

    /// Changes a server's state, capacity or budget; every replica hears of
    /// it through the catalog's change notice.
    pub async fn update(&self, id: Uuid, patch: &ServerPatch) -> Result<DbServer, ServersError> {
        self.catalog
            .update_server(id, patch)
            .await?
            .ok_or(ServersError::NotFound)
    }

    #[tracing::instrument(skip_all, fields(server = %input.name))]
    pub async fn register(&self, input: NewServerInput) -> Result<DbServer, ServersError> {
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
        let allowed: bool = client
            .query_one(
                "SELECT rolsuper OR (rolcreatedb AND rolcreaterole) FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| ServersError::unusable("cannot read the admin role's rights", e))?
            .get(0);
        drop(client);
        let _ = driver.await;
        if !allowed {
            return Err(ServersError::Unusable {
                reason: "the admin role can neither create databases nor roles",
                source: None,
            });
        }
        self.provisioner
            .prepare_server(server)
            .await
            .map_err(|e| ServersError::unusable("cannot prepare its template", e))?;
        Ok(())
    }
}
