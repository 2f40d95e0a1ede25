//! Where a tenant's copies are, fleet-wide, for `doctor`'s two rules that
//! look past one server:
//! - a tenant the catalog places on a server that lacks its database is
//!   not marked failed while a live or quarantined copy of it is on any
//!   server: doctor says where the copy is and how to bring it back (a
//!   catalog restored to a point before a move places the tenant on the
//!   server it left);
//! - a quarantined copy whose tenant has a catalog row not purged is never
//!   purged unless that tenant's live database is on the server the catalog
//!   places it on: otherwise the copy may be the only one.

use super::Reconciler;
use crate::catalog::{DbServer, ServerState, TenantRecord};
use crate::domain::{DbCopy, DbName};
use crate::provisioner::ServerObject;
use crate::tenants::TenantsError;

/// What one server held of this installation's kind of objects, as found.
pub(super) struct Inventory {
    pub server: DbServer,
    pub databases: Vec<ServerObject>,
    pub roles: Vec<ServerObject>,
}

impl Reconciler {
    /// Every server that is not down, with its tenant databases and roles.
    /// A server that cannot be listed is left out and named in the error
    /// list, so the caller can go on with the others.
    pub(super) async fn inventories(&self) -> Result<(Vec<Inventory>, Vec<String>), TenantsError> {
        let mut found = Vec::new();
        let mut unlisted = Vec::new();
        for server in self.tenants.catalog().list_servers().await? {
            if server.state == ServerState::Down {
                continue;
            }
            match self
                .tenants
                .provisioner()
                .list_tenant_objects(&server)
                .await
            {
                Ok((databases, roles)) => found.push(Inventory {
                    server,
                    databases,
                    roles,
                }),
                Err(e) => unlisted.push(format!("server {}: cannot list it: {e}", server.name)),
            }
        }
        Ok((found, unlisted))
    }

    /// The hints for a tenant whose database is missing from `server`,
    /// from a fresh look at every server: empty when no copy is anywhere.
    /// A server that cannot be listed may hold one: that is a hint too, so
    /// the tenant is not marked failed on a guess.
    pub(super) async fn copy_hints_now(
        &self,
        tenant: &TenantRecord,
        server: &DbServer,
    ) -> Result<Vec<String>, TenantsError> {
        let (found, unlisted) = self.inventories().await?;
        let mut hints = copy_hints(tenant, server, &found);
        for why in unlisted {
            hints.push(format!(
                "tenant {}: its database is missing from {}, and a copy may be on a server doctor could not look at ({why}); not marked failed",
                tenant.id, server.name
            ));
        }
        Ok(hints)
    }

    /// Whether `tenant`'s live database is on the server the catalog places
    /// it on, looked at now. A server that cannot be reached counts as no.
    pub(super) async fn live_where_placed_now(
        &self,
        tenant: &TenantRecord,
    ) -> Result<bool, TenantsError> {
        let Some(placed) = tenant.db_server_id else {
            return Ok(false);
        };
        let servers = self.tenants.catalog().list_servers().await?;
        let Some(server) = servers.iter().find(|s| s.id == placed) else {
            return Ok(false);
        };
        let live = DbName::for_tenant(tenant.id);
        Ok(self
            .tenants
            .provisioner()
            .database_exists(server, live.as_str())
            .await
            .unwrap_or(false))
    }
}

/// Whether `tenant`'s live database is on the server the catalog places it
/// on, among the servers found.
pub(super) fn live_where_placed(tenant: &TenantRecord, found: &[Inventory]) -> bool {
    let live = DbName::for_tenant(tenant.id);
    found.iter().any(|i| {
        Some(i.server.id) == tenant.db_server_id
            && i.databases
                .iter()
                .any(|d| d.copy == DbCopy::Live && d.name == live.as_str())
    })
}

/// Why a quarantined copy of `tenant` must be kept, if it must: its tenant
/// has a catalog row not purged, and its live database is not where the
/// catalog places it (`live_where_placed`).
pub(super) fn keep_reason(
    tenant: Option<&TenantRecord>,
    live_where_placed: bool,
) -> Option<String> {
    let tenant = tenant.filter(|t| t.purged_at.is_none())?;
    if live_where_placed {
        return None;
    }
    Some(format!(
        "tenant {} is in the catalog and its live database is not on its server; this copy may be its only one",
        tenant.id
    ))
}

/// One hint per live or quarantined copy of `tenant` found (a live one on
/// `server` itself would not be missing): where it is and how to bring it
/// back.
pub(super) fn copy_hints(
    tenant: &TenantRecord,
    server: &DbServer,
    found: &[Inventory],
) -> Vec<String> {
    let mut hints = Vec::new();
    for inventory in found {
        for copy in inventory.databases.iter().filter(|d| d.tenant == tenant.id) {
            let elsewhere = inventory.server.id != server.id;
            let kept = copy.copy == DbCopy::Quarantined || (elsewhere && copy.copy == DbCopy::Live);
            if kept {
                hints.push(bring_back_hint(tenant, server, &inventory.server, copy));
            }
        }
    }
    hints
}

/// "Tenant T: its database is missing from A; B holds its copy; to bring it
/// back: …", with the statements to run.
fn bring_back_hint(
    tenant: &TenantRecord,
    missing_from: &DbServer,
    holder: &DbServer,
    copy: &ServerObject,
) -> String {
    let live = DbName::for_tenant(tenant.id);
    let (kind, mut steps) = if copy.copy == DbCopy::Quarantined {
        let (from, to) = (quoted(&copy.name), quoted(live.as_str()));
        (
            "quarantined copy",
            vec![format!(
                "on {}: ALTER DATABASE {from} RENAME TO {to}; ALTER DATABASE {to} WITH ALLOW_CONNECTIONS true",
                holder.name
            )],
        )
    } else {
        ("live copy", Vec::new())
    };
    if holder.id != missing_from.id {
        steps.push(format!(
            "in the catalog (it may predate a move): UPDATE tenants SET db_server_id = '{}' WHERE id = '{}'",
            holder.id, tenant.id
        ));
    }
    format!(
        "tenant {}: its database {live} is missing from {}, but {} holds its {kind} {}; to bring it back, {}",
        tenant.id,
        missing_from.name,
        holder.name,
        copy.name,
        steps.join("; then ")
    )
}

/// A database name as the hint's statements quote it. The names are
/// `DbName`s (recognised on the server, or derived from a tenant id):
/// letters, digits and underscores only, so nothing needs escaping.
fn quoted(name: &str) -> String {
    debug_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    format!("\"{name}\"")
}
