//! Placement by measured load: each server's load as the last usage sample
//! found it (`server_load`), weighed against its capacity; a new tenant
//! goes to the server with the most headroom.
//!
//! Rule: a server's utilisation is its largest ratio of use to capacity
//! over tenants (`capacity`), storage (`storage_capacity_mb`, when set),
//! connections (against its `max_connections`) and requests an hour
//! (`requests_per_hour_capacity`, when set). A server never sampled weighs
//! by its tenant count alone.
//!
//! Rule: between samples, each root tenant placed on a server since its
//! sample weighs what a new tenant database does there (the template's
//! size), so tenants made in a burst spread instead of herding onto the
//! server that looked emptiest at the last sample.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::servers::{server_from_row, SERVER_COLUMNS};
use super::{Catalog, CatalogError, DbServer};
use crate::domain::{TenantId, Tier};

/// The root tenants on server `s` now.
const TENANTS_ON: &str = "(SELECT count(*) FROM tenants t WHERE t.db_server_id = s.id
        AND t.purged_at IS NULL AND t.parent_id IS NULL)";

/// Server `s`'s storage as placement weighs it: the last sample's, plus a
/// new tenant database's weight for each tenant placed since.
fn storage_estimate() -> String {
    format!("(l.storage_bytes + greatest({TENANTS_ON} - l.tenants, 0) * l.new_tenant_bytes)")
}

/// A server's utilisation, over `s` (db_servers) and `l` (server_load).
fn utilisation() -> String {
    format!(
        "greatest(
            {TENANTS_ON}::float8 / s.capacity,
            coalesce({}::float8 / (s.storage_capacity_mb * 1048576.0), 0),
            coalesce(l.connections::float8 / nullif(l.max_connections, 0), 0),
            coalesce(l.requests_per_hour::float8 / s.requests_per_hour_capacity, 0))",
        storage_estimate()
    )
}

/// A server's load and capacity, as placement weighs them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServerLoad {
    pub server_id: Uuid,
    pub name: String,
    pub state: String,
    pub tenants: i64,
    pub capacity: i32,
    /// Storage as last sampled.
    pub storage_bytes: Option<i64>,
    /// Storage as placement weighs it: the sample, plus a new tenant
    /// database's size for each tenant placed on the server since.
    pub storage_estimate_bytes: Option<i64>,
    pub storage_capacity_mb: Option<i64>,
    pub connections: Option<i32>,
    pub max_connections: Option<i32>,
    pub requests_per_hour: Option<i64>,
    pub requests_per_hour_capacity: Option<i64>,
    /// The largest of its ratios of use to capacity (1.0: full).
    pub utilisation: f64,
    pub sampled_at: Option<DateTime<Utc>>,
}

/// What a sample measured on a server as a whole.
#[derive(Debug, Clone, Copy)]
pub struct MeasuredLoad {
    /// Every database's size.
    pub storage_bytes: i64,
    /// Client sessions, and their limit.
    pub connections: i32,
    pub max_connections: i32,
    /// What a new tenant database weighs there: its template's size.
    pub new_tenant_bytes: i64,
}

/// A placed root tenant, as a rebalance plan weighs it.
#[derive(Debug, Clone)]
pub struct PlanTenant {
    pub id: TenantId,
    pub slug: String,
    pub tier: Tier,
    pub server: Uuid,
    pub storage_bytes: i64,
    pub requests_per_hour: i64,
}

impl Catalog {
    /// Placement: among the active servers pinned to `tier`, or when none is,
    /// among the active servers pinned to no tier, the one with the most
    /// headroom (the lowest utilisation), ties broken by age.
    pub async fn pick_server(&self, tier: Tier) -> Result<Option<DbServer>, CatalogError> {
        self.read_opt(
            &format!(
                "SELECT {SERVER_COLUMNS} FROM db_servers s LEFT JOIN server_load l ON l.server_id = s.id
                  WHERE s.state = 'active'
                    AND CASE WHEN EXISTS (SELECT 1 FROM db_servers p
                                           WHERE p.state = 'active' AND $1 = ANY (p.pinned_tiers))
                             THEN $1 = ANY (s.pinned_tiers)
                             ELSE s.pinned_tiers = '{{}}' END
                  ORDER BY {}, s.created_at
                  LIMIT 1",
                utilisation()
            ),
            &[&tier.as_str()],
            server_from_row,
        )
        .await
    }

    /// Records what a sample measured on `server`, with the root tenants it
    /// holds now; its requests an hour are its tenants' over the last hour,
    /// from the flushed usage.
    pub async fn record_server_load(
        &self,
        server: Uuid,
        measured: &MeasuredLoad,
    ) -> Result<(), CatalogError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO server_load AS l (server_id, sampled_at, storage_bytes, connections,
                        max_connections, new_tenant_bytes, tenants, requests_per_hour)
                 SELECT $1, now(), $2, $3, $4, $5,
                        (SELECT count(*)::int4 FROM tenants t WHERE t.db_server_id = $1
                            AND t.purged_at IS NULL AND t.parent_id IS NULL),
                        coalesce((
                        SELECT sum(u.requests_data + u.requests_control)::int8
                          FROM usage_hourly u JOIN tenants t ON t.id = u.tenant_id
                         WHERE t.db_server_id = $1 AND u.hour >= date_trunc('hour', now()) - interval '1 hour'
                           AND u.hour < date_trunc('hour', now())), 0)
                 ON CONFLICT (server_id) DO UPDATE SET sampled_at = EXCLUDED.sampled_at,
                        storage_bytes = EXCLUDED.storage_bytes, connections = EXCLUDED.connections,
                        max_connections = EXCLUDED.max_connections,
                        new_tenant_bytes = EXCLUDED.new_tenant_bytes, tenants = EXCLUDED.tenants,
                        requests_per_hour = EXCLUDED.requests_per_hour",
                &[
                    &server,
                    &measured.storage_bytes,
                    &measured.connections,
                    &measured.max_connections,
                    &measured.new_tenant_bytes,
                ],
            )
            .await?;
        Ok(())
    }

    /// Every placed root tenant, as a rebalance plan weighs it: its server,
    /// its last storage sample and its requests over the last whole hour.
    pub async fn plan_tenants(&self) -> Result<Vec<PlanTenant>, CatalogError> {
        self.read_all(
            "SELECT t.id, t.slug, t.tier, t.db_server_id,
                    coalesce((SELECT u.storage_bytes FROM usage_hourly u
                               WHERE u.tenant_id = t.id AND u.storage_bytes IS NOT NULL
                               ORDER BY u.hour DESC LIMIT 1), 0)::int8 AS storage_bytes,
                    coalesce((SELECT sum(u.requests_data + u.requests_control) FROM usage_hourly u
                               WHERE u.tenant_id = t.id
                                 AND u.hour >= date_trunc('hour', now()) - interval '1 hour'
                                 AND u.hour < date_trunc('hour', now())), 0)::int8 AS requests_per_hour
               FROM tenants t
              WHERE t.parent_id IS NULL AND t.db_server_id IS NOT NULL AND t.purged_at IS NULL
                AND t.status IN ('active', 'suspended', 'deleted')
              ORDER BY t.id",
            &[],
            |r| PlanTenant {
                id: TenantId::from(r.get::<_, Uuid>("id")),
                slug: r.get("slug"),
                tier: Tier::parse(r.get("tier")).unwrap_or_default(),
                server: r.get("db_server_id"),
                storage_bytes: r.get("storage_bytes"),
                requests_per_hour: r.get("requests_per_hour"),
            },
        )
        .await
    }

    /// Every server's load and capacity, the busiest first.
    pub async fn server_loads(&self) -> Result<Vec<ServerLoad>, CatalogError> {
        self.read_all(
            &format!(
                "SELECT s.id, s.name, s.state, s.capacity, s.storage_capacity_mb,
                        s.requests_per_hour_capacity, l.storage_bytes, l.connections,
                        l.max_connections, l.requests_per_hour, l.sampled_at,
                        {TENANTS_ON} AS tenants, {} AS storage_estimate_bytes,
                        {} AS utilisation
                   FROM db_servers s LEFT JOIN server_load l ON l.server_id = s.id
                  ORDER BY utilisation DESC, s.name",
                storage_estimate(),
                utilisation()
            ),
            &[],
            |r| ServerLoad {
                server_id: r.get("id"),
                name: r.get("name"),
                state: r.get("state"),
                tenants: r.get("tenants"),
                capacity: r.get("capacity"),
                storage_bytes: r.get("storage_bytes"),
                storage_estimate_bytes: r.get("storage_estimate_bytes"),
                storage_capacity_mb: r.get("storage_capacity_mb"),
                connections: r.get("connections"),
                max_connections: r.get("max_connections"),
                requests_per_hour: r.get("requests_per_hour"),
                requests_per_hour_capacity: r.get("requests_per_hour_capacity"),
                utilisation: r.get("utilisation"),
                sampled_at: r.get("sampled_at"),
            },
        )
        .await
    }
}
