//! The data plane's narrow, read-only view of the catalog: tenant and server
//! rows, custom domains, and a tenant's own credentials (its role password,
//! opened with the master key). The router reads through it and nothing
//! else: it never sees a server's admin credentials, the lifecycle service
//! or the provisioner, and it never writes.

use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::catalog::Catalog;
/// The catalog rows the data plane reads, named here so that the router
/// needs nothing else of the catalog.
pub use crate::catalog::{CatalogError, DbServer, ServerState, TenantRecord};
use crate::crypto::{CryptoError, MasterKey};
use crate::domain::{DbName, TenantId};

/// Why a tenant's own connection settings cannot be made.
#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum CredentialsError {
    #[error("the tenant has no role password in the catalog")]
    Missing,
    #[error("the tenant's role password does not open with the master key")]
    Sealed(#[source] CryptoError),
}

#[derive(Clone)]
pub struct Directory {
    catalog: Catalog,
    master_key: MasterKey,
}

impl Directory {
    pub fn new(catalog: Catalog, master_key: MasterKey) -> Self {
        Self {
            catalog,
            master_key,
        }
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, CatalogError> {
        self.catalog.get_tenant(id).await
    }

    pub async fn server(&self, id: Uuid) -> Result<Option<DbServer>, CatalogError> {
        self.catalog.get_server(id).await
    }

    /// The tenant a custom domain (lowercase, no port) belongs to.
    pub async fn tenant_for_domain(&self, host: &str) -> Result<Option<TenantId>, CatalogError> {
        self.catalog.tenant_for_domain(host).await
    }

    /// The catalog's own connection settings, for the change listener.
    pub fn catalog_config(&self) -> &crate::pg::PgConfig {
        self.catalog.config()
    }

    /// Connection settings to a root tenant's database on `server`, as the
    /// tenant's own login role.
    pub fn session_config(
        &self,
        server: &DbServer,
        root: &TenantRecord,
    ) -> Result<crate::pg::PgConfig, CredentialsError> {
        let password = root
            .role_password(&self.master_key)
            .map_err(CredentialsError::Sealed)?
            .ok_or(CredentialsError::Missing)?;
        let db = DbName::for_tenant(root.id);
        let mut config = server.connection_base(self.catalog.config());
        config
            .user(db.as_str())
            .password(password.expose_secret())
            .dbname(db.as_str())
            .application_name("tenant-plane-router");
        Ok(config)
    }
}
