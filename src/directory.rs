//! The data plane's narrow, read-only view of the catalog: tenant and server
//! rows, custom domains, and a tenant's own credentials (its role password,
//! opened with the master key). The router reads through it and nothing
//! else: it never sees a server's admin credentials, the lifecycle service
//! or the provisioner, and it never writes.

use std::sync::Arc;

use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::catalog::Catalog;
/// The catalog rows the data plane reads, named here so that the router
/// needs nothing else of the catalog.
pub use crate::catalog::{CatalogError, DbServer, QuotaBreach, ServerState, TenantRecord};
use crate::crypto::{CryptoError, MasterKey};
use crate::domain::{DbName, TenantId};
use crate::pg::PgConfig;

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

/// Connection settings made from a tenant's sealed password on a server,
/// kept while that sealed value and placement stay the same.
#[derive(Clone)]
struct SessionSettings {
    sealed: Arc<[u8]>,
    config: PgConfig,
}

/// Tenants whose connection settings are kept: a pool rebuilt after an
/// eviction then needs no unseal.
const KEPT_SETTINGS: u64 = 10_000;

#[derive(Clone)]
pub struct Directory {
    catalog: Catalog,
    master_key: MasterKey,
    settings: moka::sync::Cache<(TenantId, Uuid), SessionSettings>,
}

impl Directory {
    pub fn new(catalog: Catalog, master_key: MasterKey) -> Self {
        Self {
            catalog,
            master_key,
            settings: moka::sync::Cache::new(KEPT_SETTINGS),
        }
    }

    /// The quotas `root` is over (`usage`).
    pub async fn quota_breaches(&self, root: TenantId) -> Result<Vec<QuotaBreach>, CatalogError> {
        self.catalog.quota_breaches(root).await
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, CatalogError> {
        self.catalog.get_tenant(id).await
    }

    /// A server's row as the router needs it (its `tenants` is not counted).
    pub async fn server(&self, id: Uuid) -> Result<Option<DbServer>, CatalogError> {
        self.catalog.get_server_for_route(id).await
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
    /// Kept per tenant and server while the sealed password is the one they
    /// were made from, so a new password, a re-seal or a move makes them anew.
    pub fn session_config(
        &self,
        server: &DbServer,
        root: &TenantRecord,
    ) -> Result<PgConfig, CredentialsError> {
        let sealed = root
            .db_password_enc
            .as_deref()
            .ok_or(CredentialsError::Missing)?;
        let key = (root.id, server.id);
        if let Some(kept) = self.settings.get(&key) {
            if *kept.sealed == *sealed && kept.config.tls() == &server.tls() {
                return Ok(kept.config);
            }
        }
        let config = self.make_session_config(server, root)?;
        self.settings.insert(
            key,
            SessionSettings {
                sealed: sealed.into(),
                config: config.clone(),
            },
        );
        Ok(config)
    }

    fn make_session_config(
        &self,
        server: &DbServer,
        root: &TenantRecord,
    ) -> Result<PgConfig, CredentialsError> {
        let password = root
            .role_password(&self.master_key)
            .map_err(CredentialsError::Sealed)?
            .ok_or(CredentialsError::Missing)?;
        let db = DbName::for_tenant(root.id);
        let mut config = server.connection_base(self.catalog.config());
        config
            .user(db.http_login())
            .password(password.expose_secret())
            .dbname(db.as_str())
            .application_name("tenant-plane-router");
        Ok(config)
    }
}
