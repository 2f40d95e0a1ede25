//! `db_servers`: the PostgreSQL servers that hold tenant databases.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Catalog, CatalogError};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
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

    fn parse(s: &str) -> Self {
        match s {
            "draining" => Self::Draining,
            "down" => Self::Down,
            _ => Self::Active,
        }
    }
}

/// A database server as the catalog records it. Credentials are never part of it.
#[derive(Debug, Clone, Serialize)]
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
    pub tenants: i64,
}

/// A change to a server's operational fields; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct ServerPatch {
    pub state: Option<ServerState>,
    pub capacity: Option<i32>,
    pub connection_budget: Option<i32>,
}

const SERVER_COLUMNS: &str = "s.id, s.name, s.host, s.port, s.state, s.capacity,
    s.connection_budget, s.is_catalog,
    (SELECT count(*) FROM tenants t WHERE t.db_server_id = s.id
        AND t.purged_at IS NULL) AS tenants";

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
        let client = self.pool().get().await?;
        let row = client
            .query_one(
                "INSERT INTO db_servers (id, name, host, port, admin_user, is_catalog)
                 VALUES ($1, $2, $3, $4, $5, true)
                 ON CONFLICT (name) DO UPDATE
                   SET host = EXCLUDED.host, port = EXCLUDED.port,
                       admin_user = EXCLUDED.admin_user, updated_at = now()
                 RETURNING id",
                &[&Uuid::now_v7(), &CATALOG_SERVER_NAME, &host, &port, &user],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Every server with the number of tenants placed on it.
    pub async fn list_servers(&self) -> Result<Vec<DbServer>, CatalogError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!("SELECT {SERVER_COLUMNS} FROM db_servers s ORDER BY s.created_at, s.id"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(server_from_row).collect())
    }

    pub async fn get_server(&self, id: Uuid) -> Result<Option<DbServer>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {SERVER_COLUMNS} FROM db_servers s WHERE s.id = $1"),
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(server_from_row))
    }

    /// Placement: the active server with the most free capacity (fewest
    /// tenants for its capacity), ties broken by age.
    pub async fn pick_server(&self) -> Result<Option<DbServer>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {SERVER_COLUMNS} FROM db_servers s WHERE s.state = 'active'
                      ORDER BY (SELECT count(*) FROM tenants t WHERE t.db_server_id = s.id
                                 AND t.purged_at IS NULL)::float8 / s.capacity, s.created_at
                      LIMIT 1"
                ),
                &[],
            )
            .await?;
        Ok(row.as_ref().map(server_from_row))
    }

    /// Applies `patch` and returns the server, or `None` when there is no such server.
    pub async fn update_server(
        &self,
        id: Uuid,
        patch: &ServerPatch,
    ) -> Result<Option<DbServer>, CatalogError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!(
                    "WITH s AS (
                        UPDATE db_servers SET
                            state = coalesce($2, state),
                            capacity = coalesce($3, capacity),
                            connection_budget = coalesce($4, connection_budget),
                            updated_at = now()
                        WHERE id = $1 RETURNING *)
                     SELECT {SERVER_COLUMNS} FROM s"
                ),
                &[
                    &id,
                    &patch.state.map(ServerState::as_str),
                    &patch.capacity,
                    &patch.connection_budget,
                ],
            )
            .await?;
        Ok(row.as_ref().map(server_from_row))
    }
}

fn server_from_row(r: &tokio_postgres::Row) -> DbServer {
    DbServer {
        id: r.get("id"),
        name: r.get("name"),
        host: r.get("host"),
        port: u16::try_from(r.get::<_, i32>("port")).unwrap_or(0),
        state: ServerState::parse(r.get("state")),
        capacity: r.get("capacity"),
        connection_budget: r.get("connection_budget"),
        is_catalog: r.get("is_catalog"),
        tenants: r.get("tenants"),
    }
}
