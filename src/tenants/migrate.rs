//! Migrating one tenant's database, on request.
//!
//! Rule: a migration on request takes the tenant's operation lock, as a
//! fleet item does (`fleet::worker`), so it never overlaps a move, a restore
//! or a purge.
//!
//! Rule: a tenant recorded as drifted at its version now is not migrated
//! unless the request allows drift; the record is read under that lock.

use serde::Serialize;

use super::{Tenants, TenantsError};
use crate::catalog::{OpKind, TenantChange, TenantRecord};
use crate::domain::{DbName, TenantId};
use crate::migrator::PendingMigration;

#[derive(Debug, Clone, Serialize)]
pub struct TenantMigration {
    pub tenant_id: TenantId,
    pub from_version: i32,
    pub to_version: i32,
    pub applied: usize,
    pub dry_run: bool,
    /// With `dry_run`: what would be applied.
    pub pending: Vec<PendingMigration>,
}

impl Tenants {
    /// Applies pending tenant migrations (up to `target`) to a tenant's
    /// database and records its new version, under the tenant's operation
    /// lock: a move, restore or purge waits for it (409 while it runs), and
    /// it for them. A dry run only reads, and takes no lock. A tenant
    /// recorded as drifted at its version is refused (`Drifted`) unless
    /// `allow_drift`.
    #[tracing::instrument(skip_all, fields(tenant.id = %id))]
    pub async fn migrate(
        &self,
        id: TenantId,
        target: Option<i32>,
        dry_run: bool,
        allow_drift: bool,
    ) -> Result<TenantMigration, TenantsError> {
        if dry_run {
            let record = self.record(id).await?;
            let config = self.migration_config(&record).await?;
            let (version, pending) = self
                .provisioner
                .migrations()
                .inspect(&config, target)
                .await?;
            return Ok(TenantMigration {
                tenant_id: id,
                from_version: version,
                to_version: version,
                applied: 0,
                dry_run,
                pending,
            });
        }
        let (record, lease) = self
            .ops
            .begin(
                id,
                OpKind::Migrate,
                &serde_json::json!({ "target": target }),
            )
            .await?;
        // Drift as recorded, read under the tenant's lock (drift plumbing).
        if !allow_drift {
            match self.catalog.tenant_drift(id).await {
                Ok(Some(drift)) if drift.is_drifted() => {
                    lease.discard().await?;
                    return Err(TenantsError::Drifted(drift.refusal()));
                }
                Ok(_) => {}
                Err(e) => {
                    lease.discard().await?;
                    return Err(e.into());
                }
            }
        }
        let config = match self.migration_config(&record).await {
            Ok(config) => config,
            Err(e) => {
                lease.discard().await?;
                return Err(e);
            }
        };
        let migrated = lease
            .guard(async {
                Ok::<_, TenantsError>(
                    self.provisioner
                        .migrations()
                        .migrate_database(&config, target)
                        .await?,
                )
            })
            .await;
        let outcome = match migrated {
            Ok(outcome) => outcome,
            Err(e @ TenantsError::Abandoned(_)) => return Err(e),
            Err(e) => {
                lease.fail(id, e.code(), &e.to_string()).await?;
                return Err(e);
            }
        };
        let change = TenantChange {
            schema_version: Some(outcome.to_version),
            error: record.error.clone(),
            ..TenantChange::default()
        };
        lease.finish(id, None, &change).await?;
        Ok(TenantMigration {
            tenant_id: id,
            from_version: outcome.from_version,
            to_version: outcome.to_version,
            applied: outcome.applied,
            dry_run,
            pending: Vec::new(),
        })
    }

    /// Admin connection settings of a root tenant's own database.
    pub(super) async fn migration_config(
        &self,
        record: &TenantRecord,
    ) -> Result<crate::pg::PgConfig, TenantsError> {
        if record.parent_id.is_some() || record.db_name.is_none() || record.purged_at.is_some() {
            return Err(TenantsError::NotRoot(
                "a subtenant shares its parent's database; migrate the parent",
            ));
        }
        let server = self.server_of(record).await?;
        Ok(self
            .provisioner
            .admin_config(&server, DbName::for_tenant(record.id).as_str())?)
    }
}
