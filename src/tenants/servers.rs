//! Registering a database server: its DSN is checked by connecting (the
//! role must be able to create databases and roles), its template database
//! is prepared, and its admin password is stored sealed with the master key.

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{Tenants, TenantsError};
use crate::catalog::{DbServer, NewServer, ServerState};
use crate::domain::{ServerName, Tier};
use crate::provisioner::server_password_purpose;

/// A server to register, as the API or CLI parsed it.
#[derive(Debug, Clone)]
pub struct NewServerInput {
    pub name: ServerName,
    /// `postgres://user:password@host:port` or `host=… user=…`.
    pub dsn: SecretString,
    pub capacity: i32,
    pub connection_budget: Option<i32>,
    pub pinned_tiers: Vec<Tier>,
}

impl Tenants {
    #[tracing::instrument(skip_all, fields(server = %input.name))]
    pub async fn register_server(&self, input: NewServerInput) -> Result<DbServer, TenantsError> {
        let config = tokio_postgres::Config::from_str(input.dsn.expose_secret())
            .map_err(|_| TenantsError::InvalidDsn("the DSN does not parse".into()))?;
        let host = match config.get_hosts() {
            [tokio_postgres::config::Host::Tcp(h)] => h.clone(),
            [tokio_postgres::config::Host::Unix(p)] => p.display().to_string(),
            _ => return Err(TenantsError::InvalidDsn("name exactly one host".into())),
        };
        let port = match config.get_ports() {
            [] => 5432,
            [p] => *p,
            _ => return Err(TenantsError::InvalidDsn("name exactly one port".into())),
        };
        let user = config
            .get_user()
            .ok_or_else(|| TenantsError::InvalidDsn("name the admin user".into()))?
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
        };
        self.check_server(&server).await?;
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
            })
            .await?;
        tracing::info!(server.id = %id, "registered a database server");
        Ok(registered)
    }

    /// Connects as the admin, checks its rights, and prepares the template.
    async fn check_server(&self, server: &DbServer) -> Result<(), TenantsError> {
        let config = self.provisioner.admin_config(server, "postgres")?;
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| TenantsError::ServerUnusable(format!("cannot connect: {e}")))?;
        let driver = tokio::spawn(connection);
        let allowed: bool = client
            .query_one(
                "SELECT rolsuper OR (rolcreatedb AND rolcreaterole) FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| TenantsError::ServerUnusable(e.to_string()))?
            .get(0);
        drop(client);
        let _ = driver.await;
        if !allowed {
            return Err(TenantsError::ServerUnusable(
                "the admin role can neither create databases nor roles".into(),
            ));
        }
        self.provisioner.prepare_server(server).await.map_err(|e| {
            TenantsError::ServerUnusable(format!("cannot prepare its template: {e}"))
        })?;
        Ok(())
    }
}
