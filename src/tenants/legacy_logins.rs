//! Tenant roles made while they were logins, converted to groups on every
//! server (`provisioner`'s rule: no role another role is a member of can
//! log in). Until its tenant's is converted, a server's HTTP sessions for
//! that tenant fail: the reconciler runs this before the listener serves.

use futures_util::StreamExt;

use super::{Tenants, TenantsError};
use crate::catalog::OpKind;
use crate::domain::{DbName, TenantId};

/// Tenants converted at once on one server: each is one short statement.
const CONVERSIONS_AT_ONCE: usize = 4;

/// What one conversion pass did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Conversions {
    pub converted: Vec<TenantId>,
    /// What could not be converted (a server, or a tenant), and why.
    pub failed: Vec<(String, String)>,
}

impl Tenants {
    /// Converts the tenant roles (and readers) that can still log in, on
    /// every server that answers. A role whose tenant the catalog no longer
    /// holds is left to `doctor`.
    pub async fn convert_legacy_logins(&self) -> Result<Conversions, TenantsError> {
        let mut done = Conversions::default();
        for server in self.catalog.list_servers().await? {
            let legacy = match self.provisioner.legacy_logins(&server).await {
                Ok(legacy) => legacy,
                Err(e) => {
                    done.failed
                        .push((format!("server {}", server.name), e.to_string()));
                    continue;
                }
            };
            let server = &server;
            let owned = legacy
                .into_iter()
                .filter_map(|db| Some((DbName::owner_of(db.as_str())?.0, db)));
            let outcomes: Vec<_> =
                futures_util::stream::iter(owned)
                    .map(|(tenant, db)| async move {
                        (tenant, self.convert_one(server, &db, tenant).await)
                    })
                    .buffer_unordered(CONVERSIONS_AT_ONCE)
                    .collect()
                    .await;
            for (tenant, outcome) in outcomes {
                match outcome {
                    Ok(true) => done.converted.push(tenant),
                    Ok(false) => {}
                    Err(e) => done
                        .failed
                        .push((format!("tenant {tenant}"), e.to_string())),
                }
            }
        }
        if !done.failed.is_empty() {
            tracing::warn!(failed = ?done.failed, "tenant roles that still log in were left as they are; the next pass tries again");
        }
        Ok(done)
    }

    /// Converts one tenant's roles on `server`. The roles lock serialises it
    /// with whatever else changes them (a create, a move, a restore, a
    /// pause); a move under way tells it a read-only default on the tenant
    /// role may be that move's pause.
    async fn convert_one(
        &self,
        server: &crate::catalog::DbServer,
        db: &DbName,
        tenant: TenantId,
    ) -> Result<bool, TenantsError> {
        let Some(record) = self.catalog.get_tenant(tenant).await? else {
            return Ok(false);
        };
        if record.purged_at.is_some() {
            return Ok(false);
        }
        let moving = self
            .catalog
            .unfinished_operation_of(tenant)
            .await?
            .is_some_and(|op| op.kind == OpKind::Move);
        let password = self.role_password(&record)?;
        self.provisioner
            .convert_legacy_logins(server, db, &password, moving)
            .await?;
        Ok(true)
    }
}
