//! `db_servers`: the PostgreSQL servers that hold tenant databases.
//!
//! Placement rule: a tenant is placed (created, restored as new, moved) only
//! on an `active` server, and that is checked in the same transaction that
//! writes the placement, under a share lock on the server's row
//! (`lock_active_server`). `pick_server` only proposes; the write decides.
//!
//! Rules:
//! - A drain's listing is final only when read with the server's state in
//!   one transaction under its row's `FOR UPDATE` (`Catalog::drain_listing`):
//!   no placement's share lock, and no state change, can slip between.
//! - Lock order: a tenant's row, then its server's; never a server's row and
//!   then a tenant's row in one transaction.
//! - A server's TLS policy (sslmode, CA certificates) lives in its row, and
//!   every connection to it (the provisioner's, the router's, `pg_dump`'s)
//!   starts from `DbServer::connection_base`, which carries it. The catalog's
//!   own server is reached with the catalog's settings and credentials.
//! - A server's admin password is kept only sealed (purpose-bound to the
//!   server id) and never serialised: `DbServer` skips it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Catalog, CatalogError};
use crate::domain::Tier;
use crate::pg::{PgConfig, RootCerts, SslMode, TlsPolicy};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Active,
    Draining,
    Down,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Down => "down",
        }
    }

    pub(super) fn parse(s: &str) -> Self {
        match s {
            "draining" => Self::Draining,
            "down" => Self::Down,
            _ => Self::Active,
        }
    }
}

/// A database server as the catalog records it. Credentials are never part of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DbServer {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub state: ServerState,
    pub capacity: i32,
    /// Router connections allowed to this server; `None`: the configured default.
    pub connection_budget: Option<i32>,
    /// The catalog's own server, reached with the configured catalog credentials.
    pub is_catalog: bool,
    /// The role the provisioner connects as.
    pub admin_user: String,
    /// Its password, sealed with the master key (`None`: none, or the catalog's).
    #[serde(skip)]
    pub admin_password_enc: Option<Vec<u8>>,
    /// Tiers placed only here; empty: any tier without a pinned server.
    pub pinned_tiers: Vec<String>,
    pub tenants: i64,
    /// How connections to it use TLS (libpq's sslmode).
    pub ssl_mode: SslMode,
    /// The CA certificates its certificate must chain to.
    #[serde(skip)]
    pub ssl_roots: RootCerts,
    /// The pgBackRest archive a restore to a time reads: its stanza and
    /// repository (its secrets are never shown). Absent: none.
    #[schema(value_type = Option<Object>)]
    pub wal_archive: Option<serde_json::Value>,
    /// Storage it can hold, in MiB, and requests an hour it can serve, as
    /// placement weighs its measured load (`catalog::placement`); absent:
    /// not weighed.
    pub storage_capacity_mb: Option<i64>,
    pub requests_per_hour_capacity: Option<i64>,
}

impl DbServer {
    /// Where the server is and who administers it, without any password:
    /// the catalog's own settings for the catalog's server (its row's
    /// address is only what the catalog URL said), its row for any other.
    /// Callers add the credentials they hold.
    pub fn connection_base(&self, catalog: &PgConfig) -> PgConfig {
        if self.is_catalog {
            return catalog.clone();
        }
        let mut config = tokio_postgres::Config::new();
        if self.host.starts_with('/') {
            config.host_path(&self.host);
        } else {
            config.host(&self.host);
        }
        config.port(self.port).user(&self.admin_user);
        PgConfig::new(config, self.tls())
    }

    /// The TLS policy its connections use.
    pub fn tls(&self) -> TlsPolicy {
        TlsPolicy {
            mode: self.ssl_mode,
            roots: self.ssl_roots.clone(),
        }
    }
}

/// A server to register, validated and with its password already sealed.
#[derive(Debug, Clone)]
pub struct NewServer {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_password_enc: Option<Vec<u8>>,
    pub capacity: i32,
    pub connection_budget: Option<i32>,
    pub pinned_tiers: Vec<Tier>,
    pub tls: TlsPolicy,
}

/// A change to a server's operational fields; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct ServerPatch {
    pub state: Option<ServerState>,
    pub capacity: Option<i32>,
    pub connection_budget: Option<i32>,
    pub storage_capacity_mb: Option<i64>,
    pub requests_per_hour_capacity: Option<i64>,
}

impl ServerPatch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.state.is_none()
            && self.capacity.is_none()
            && self.connection_budget.is_none()
            && self.storage_capacity_mb.is_none()
            && self.requests_per_hour_capacity.is_none()
    }
}

pub(super) const SERVER_COLUMNS: &str = "s.id, s.name, s.host, s.port, s.state, s.capacity,
    s.connection_budget, s.is_catalog, s.admin_user, s.admin_password_enc, s.pinned_tiers,
    s.ssl_mode, s.ssl_root_cert, s.wal_archive, s.storage_capacity_mb, s.requests_per_hour_capacity,
    (SELECT count(*) FROM tenants t WHERE t.db_server_id = s.id
        AND t.purged_at IS NULL) AS tenants";

/// The same row without counting its tenants (a scan of that server's
/// tenants), for the router, which needs only where the server is.
const SERVER_ROUTE_COLUMNS: &str = "s.id, s.name, s.host, s.port, s.state, s.capacity,
    s.connection_budget, s.is_catalog, s.admin_user, s.admin_password_enc, s.pinned_tiers,
    s.ssl_mode, s.ssl_root_cert, s.wal_archive, s.storage_capacity_mb, s.requests_per_hour_capacity,
    0::int8 AS tenants";

/// The name under which the catalog's own server is registered.
pub const CATALOG_SERVER_NAME: &str = "catalog";

impl Catalog {
    /// Registers (or refreshes) the catalog's own server as a tenant database
    /// server, so that a single-server install works with no further set-up.
    pub async fn register_catalog_server(&self) -> Result<Uuid, CatalogError> {
        let host = match self.config().get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = i32::from(self.config().get_ports().first().copied().unwrap_or(5432));
        let user = self.config().get_user().unwrap_or("postgres").to_string();
        // For display: the catalog's server is reached with the catalog's
        // own settings, TLS included.
        let ssl_mode = self.config().tls().mode.as_str();
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Replicas starting together would race on the address's unique
        // index, which `ON CONFLICT (name)` does not cover.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&super::CATALOG_SCHEMA_LOCK],
        )
        .await?;
        let row = tx
            .query_one(
                "INSERT INTO db_servers (id, name, host, port, admin_user, is_catalog, ssl_mode)
                 VALUES ($1, $2, $3, $4, $5, true, $6)
                 ON CONFLICT (name) DO UPDATE
                   SET host = EXCLUDED.host, port = EXCLUDED.port,
                       admin_user = EXCLUDED.admin_user, ssl_mode = EXCLUDED.ssl_mode,
                       updated_at = now()
                 RETURNING id",
                &[
                    &Uuid::now_v7(),
                    &CATALOG_SERVER_NAME,
                    &host,
                    &port,
                    &user,
                    &ssl_mode,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(row.get(0))
    }

    /// Every server with the number of tenants placed on it.
    pub async fn list_servers(&self) -> Result<Vec<DbServer>, CatalogError> {
        self.read_all(
            &format!("SELECT {SERVER_COLUMNS} FROM db_servers s ORDER BY s.created_at, s.id"),
            &[],
            server_from_row,
        )
        .await
    }

    pub async fn get_server(&self, id: Uuid) -> Result<Option<DbServer>, CatalogError> {
        self.read_opt(
            &format!("SELECT {SERVER_COLUMNS} FROM db_servers s WHERE s.id = $1"),
            &[&id],
            server_from_row,
        )
        .await
    }

    /// `get_server` for routing: `tenants` is 0, not counted.
    pub async fn get_server_for_route(&self, id: Uuid) -> Result<Option<DbServer>, CatalogError> {
        self.read_opt(
            &format!("SELECT {SERVER_ROUTE_COLUMNS} FROM db_servers s WHERE s.id = $1"),
            &[&id],
            server_from_row,
        )
        .await
    }

    /// Registers a database server; `ServerExists` when its name or address is taken.
    pub async fn insert_server(&self, new: &NewServer) -> Result<DbServer, CatalogError> {
        let client = self.pool().get().await?;
        let tiers: Vec<&str> = new.pinned_tiers.iter().map(|t| t.as_str()).collect();
        let row = client
            .query_one(
                &format!(
                    "WITH s AS (
                        INSERT INTO db_servers (id, name, host, port, admin_user, admin_password_enc,
                                                capacity, connection_budget, pinned_tiers,
                                                ssl_mode, ssl_root_cert)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *)
                     SELECT {SERVER_COLUMNS} FROM s"
                ),
                &[
                    &new.id,
                    &new.name,
                    &new.host,
                    &i32::from(new.port),
                    &new.admin_user,
                    &new.admin_password_enc,
                    &new.capacity,
                    &new.connection_budget,
                    &tiers,
                    &new.tls.mode.as_str(),
                    &root_cert_column(&new.tls.roots),
                ],
            )
            .await
            .map_err(|e| match e.code() {
                Some(c) if *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
                    CatalogError::ServerExists
                }
                _ => CatalogError::from(e),
            })?;
        Ok(server_from_row(&row))
    }

    /// Applies `patch` and returns the server, or `None` when there is no such server.
    pub async fn update_server(
        &self,
        id: Uuid,
        patch: &ServerPatch,
    ) -> Result<Option<DbServer>, CatalogError> {
        self.read_opt(
            &format!(
                "WITH s AS (
                    UPDATE db_servers SET
                        state = coalesce($2, state),
                        capacity = coalesce($3, capacity),
                        connection_budget = coalesce($4, connection_budget),
                        storage_capacity_mb = coalesce($5, storage_capacity_mb),
                        requests_per_hour_capacity = coalesce($6, requests_per_hour_capacity),
                        updated_at = now()
                    WHERE id = $1 RETURNING *)
                 SELECT {SERVER_COLUMNS} FROM s"
            ),
            &[
                &id,
                &patch.state.map(ServerState::as_str),
                &patch.capacity,
                &patch.connection_budget,
                &patch.storage_capacity_mb,
                &patch.requests_per_hour_capacity,
            ],
            server_from_row,
        )
        .await
    }
}

/// Placement's one rule, checked inside the transaction that writes a
/// placement: the server must still be `active`. `FOR SHARE` holds its row
/// until that transaction ends, so the drain's `UPDATE ... state =
/// 'draining'` either waits for the placement to commit (and the drain's
/// next listing sees the tenant) or commits first (and the placement is
/// refused here). Either way no tenant lands on a server after its drain
/// has marked it.
///
/// Lock order: a tenant's row, then its server's. `switch_placement` holds
/// the tenant's row `FOR UPDATE` when it calls this, so a transaction that
/// locks or updates a server row and then locks or updates a tenant row
/// would deadlock with it: don't write one. Take the tenant first, or only
/// read tenants after a server's lock (as the drain's `drain_listing` does).
pub(super) async fn lock_active_server(
    tx: &tokio_postgres::Transaction<'_>,
    server: Uuid,
) -> Result<(), CatalogError> {
    let state: Option<String> = tx
        .query_opt(
            "SELECT state FROM db_servers WHERE id = $1 FOR SHARE",
            &[&server],
        )
        .await?
        .map(|r| r.get(0));
    match state.as_deref().map(ServerState::parse) {
        Some(ServerState::Active) => Ok(()),
        _ => Err(CatalogError::ServerNotActive),
    }
}

pub(super) fn server_from_row(r: &tokio_postgres::Row) -> DbServer {
    DbServer {
        id: r.get("id"),
        name: r.get("name"),
        host: r.get("host"),
        port: u16::try_from(r.get::<_, i32>("port")).unwrap_or(0),
        state: ServerState::parse(r.get("state")),
        capacity: r.get("capacity"),
        connection_budget: r.get("connection_budget"),
        is_catalog: r.get("is_catalog"),
        admin_user: r.get("admin_user"),
        admin_password_enc: r.get("admin_password_enc"),
        pinned_tiers: r.get("pinned_tiers"),
        tenants: r.get("tenants"),
        // The column's CHECK admits only the five modes.
        ssl_mode: SslMode::parse(r.get("ssl_mode")).unwrap_or(SslMode::Prefer),
        ssl_roots: match r.get::<_, Option<String>>("ssl_root_cert") {
            None => RootCerts::None,
            Some(s) if s == "system" => RootCerts::System,
            Some(pem) => RootCerts::Pem(pem.into()),
        },
        wal_archive: r.get("wal_archive"),
        storage_capacity_mb: r.get("storage_capacity_mb"),
        requests_per_hour_capacity: r.get("requests_per_hour_capacity"),
    }
}

fn root_cert_column(roots: &RootCerts) -> Option<&str> {
    match roots {
        RootCerts::None => None,
        RootCerts::System => Some("system"),
        RootCerts::Pem(pem) => Some(pem),
    }
}
