//! The only module that issues CREATE/DROP DATABASE and ROLE. It keeps each
//! server's template database current and clones tenant databases from it.
//! It never serves requests. Its maintenance sessions (to each server's
//! `postgres` database, never to a template) come from a small pool per
//! server. A session that holds an advisory lock is a `HeldLock`: cancelled,
//! it closes rather than going back to the pool with the lock.
//!
//! Rules:
//! - Every database and role it makes carries this installation's tag
//!   (`COMMENT … IS 'tenant-plane installation <id>'`, `tag_statement`), so
//!   `doctor` can tell its own objects from another installation's.
//! - Every name it puts in DDL is a tenant's `DbName`, one of its copies'
//!   names, a constant of `domain`, or a scratch database's generated name
//!   (`expected_db.rs`), quoted with `sql::quote_ident`; none is taken from
//!   a request.

mod copy;
// Drift core: scratch databases for expected schemas (issue 29).
mod expected_db;
mod held;
// Tenant roles that were logins, made groups.
mod legacy_logins;
mod roles;
mod scram;
mod subtenant_login;
mod template;
mod tenant_db;
// How far a server's WAL archiving has got (point-in-time restore).
mod wal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::{Object, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;
use uuid::Uuid;

pub use expected_db::{EXPECTED_DB_PREFIX, EXPECTED_SCHEMA_LOCK};
pub use roles::stray_defaults;
pub use template::TEMPLATE_LOCK;
pub use tenant_db::ServerObject;
pub use wal::ArchiverState;

use crate::catalog::DbServer;
use crate::crypto::MasterKey;
use crate::migrator::{MigrateError, MigrationSet};

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum ProvisionError {
    #[error("cannot connect to database server {server}")]
    Connect {
        server: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("provisioning statement failed{}", sql_reason(.0))]
    Sql(#[from] tokio_postgres::Error),
    #[error("migrating a tenant database failed")]
    Migrate(#[from] MigrateError),
    #[error("server {0} has no usable admin credentials")]
    NoCredentials(String),
    #[error("cannot reach database server {server}")]
    Pool {
        server: String,
        #[source]
        source: deadpool_postgres::PoolError,
    },
}

impl ProvisionError {
    /// The error code the API answers with (see `CatalogError::code`).
    pub fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code::ErrorCode;
        match self {
            Self::Connect { .. } => ErrorCode::DatabaseServerUnavailable,
            _ => ErrorCode::InternalError,
        }
    }
}

/// PostgreSQL's reason for a failed statement, in a form an operator may
/// see: the SQLSTATE always; the server's message (and, for a missing
/// privilege, its detail, which names the role needed) only for errors
/// about permissions and objects, whose text names roles and databases,
/// never hosts, DSNs or passwords.
pub fn sql_reason(e: &tokio_postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return String::new();
    };
    let code = db.code().code();
    // 42: access rule violations (privileges, undefined or duplicate
    // objects); 55: an object in the wrong state; 3D: no such database;
    // 2B: dependent objects; 53: insufficient resources.
    let shown = ["42", "55", "3D", "2B", "53"]
        .iter()
        .any(|class| code.starts_with(class));
    if !shown {
        return format!(": SQLSTATE {code}");
    }
    match db.detail() {
        Some(detail) if code == "42501" => {
            format!(": SQLSTATE {code}: {} ({detail})", db.message())
        }
        _ => format!(": SQLSTATE {code}: {}", db.message()),
    }
}

/// Maintenance sessions per server.
const MAINTENANCE_POOL_SIZE: usize = 4;

/// Issues DDL against the database servers.
#[derive(Clone)]
pub struct Provisioner {
    /// The catalog's connection settings; the catalog's own server is managed
    /// with the same credentials.
    catalog_config: crate::pg::PgConfig,
    /// The tenant schema templates are migrated to.
    migrations: MigrationSet,
    maintenance: Arc<Mutex<HashMap<Uuid, Pool>>>,
    /// The template version each server was last prepared at.
    template_versions: Arc<Mutex<HashMap<Uuid, i32>>>,
    /// Opens the sealed admin passwords of registered servers.
    master_key: MasterKey,
    /// Every database and role made here carries this installation's tag.
    installation: Uuid,
}

/// How long an admin session may take to open before its server counts as down.
const ADMIN_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The purpose a server's admin password is sealed for.
pub fn server_password_purpose(server: Uuid) -> String {
    format!("db-server-admin:{server}")
}

impl Provisioner {
    pub fn new(
        catalog_config: crate::pg::PgConfig,
        migrations: MigrationSet,
        master_key: MasterKey,
        installation: Uuid,
    ) -> Self {
        Self {
            catalog_config,
            migrations,
            maintenance: Arc::default(),
            template_versions: Arc::default(),
            master_key,
            installation,
        }
    }

    /// The installation this provisioner tags what it makes with.
    pub fn installation(&self) -> Uuid {
        self.installation
    }

    /// `COMMENT ON … IS <installation tag>`, for `kind` DATABASE or ROLE.
    fn tag_statement(&self, kind: &str, name: &str) -> String {
        format!(
            "COMMENT ON {kind} {} IS {}",
            crate::sql::quote_ident(name),
            crate::sql::quote_literal(&crate::catalog::installation_tag(self.installation))
        )
    }

    pub fn migrations(&self) -> &MigrationSet {
        &self.migrations
    }

    /// The template version `server` was prepared at by this process, if any.
    pub fn template_version(&self, server: Uuid) -> Option<i32> {
        self.template_versions
            .lock()
            .expect("template versions")
            .get(&server)
            .copied()
    }

    /// Asks a tenant database on `server` one yes-or-no question, as the
    /// admin, on a connection of its own (closed before it answers); `false`
    /// when the query returns no row.
    async fn ask_tenant_db(
        &self,
        server: &DbServer,
        db: &crate::domain::DbName,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<bool, ProvisionError> {
        let config = self.admin_config(server, db.as_str())?;
        let (client, connection) = config.connect().await?;
        let driver = tokio::spawn(connection);
        let answer = client.query_opt(sql, params).await;
        drop(client);
        let _ = driver.await;
        Ok(answer?.is_some_and(|row| row.get::<_, bool>(0)))
    }

    /// Admin connection settings for `dbname` on `server`: the catalog's own
    /// credentials for its server, the registered ones for any other.
    pub fn admin_config(
        &self,
        server: &DbServer,
        dbname: &str,
    ) -> Result<crate::pg::PgConfig, ProvisionError> {
        let mut config = server.connection_base(&self.catalog_config);
        if !server.is_catalog {
            if let Some(sealed) = &server.admin_password_enc {
                let password = self
                    .master_key
                    .open_string(&server_password_purpose(server.id), sealed)
                    .map_err(|_| ProvisionError::NoCredentials(server.name.clone()))?;
                config.password(password.expose_secret());
            }
        }
        config.dbname(dbname);
        config.application_name("tenant-plane-provisioner");
        config.connect_timeout(ADMIN_CONNECT_TIMEOUT);
        Ok(config)
    }

    async fn maintenance_session(&self, server: &DbServer) -> Result<Object, ProvisionError> {
        let pool = {
            let mut pools = self.maintenance.lock().expect("maintenance pools");
            match pools.get(&server.id) {
                Some(pool) => pool.clone(),
                None => {
                    let manager = self
                        .admin_config(server, "postgres")?
                        .manager(RecyclingMethod::Clean);
                    let pool = Pool::builder(manager)
                        .max_size(MAINTENANCE_POOL_SIZE)
                        .runtime(Runtime::Tokio1)
                        .wait_timeout(Some(std::time::Duration::from_secs(30)))
                        .create_timeout(Some(std::time::Duration::from_secs(5)))
                        .build()
                        .expect("a pool with a runtime builds");
                    pools.insert(server.id, pool.clone());
                    pool
                }
            }
        };
        pool.get().await.map_err(|source| match source {
            deadpool_postgres::PoolError::Backend(e) => ProvisionError::Connect {
                server: server.name.clone(),
                source: e,
            },
            source => ProvisionError::Pool {
                server: server.name.clone(),
                source,
            },
        })
    }
}
