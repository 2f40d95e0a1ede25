//! Migrating one tenant's database, on request.

use serde::Serialize;

use super::{Tenants, TenantsError};
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
    /// database and records its new version. Waits while another runner
    /// migrates the same database.
    #[tracing::instrument(skip_all, fields(tenant.id = %id))]
    pub async fn migrate(
        &self,
        id: TenantId,
        target: Option<i32>,
        dry_run: bool,
    ) -> Result<TenantMigration, TenantsError> {
        let record = self.record(id).await?;
        let (Some(server_id), Some(_)) = (record.db_server_id, record.db_name.as_ref()) else {
            return Err(TenantsError::InvalidField(
                crate::tenant_config::FieldError {
                    field: "tenant".into(),
                    reason: "a subtenant shares its parent's database; migrate the parent".into(),
                },
            ));
        };
        let server =
            self.catalog
                .get_server(server_id)
                .await?
                .ok_or(TenantsError::Inconsistent(
                    "tenant placed on an unknown server",
                ))?;
        let config = self
            .provisioner
            .admin_config(&server, DbName::for_tenant(id).as_str())?;
        let migrations = self.provisioner.migrations();
        if dry_run {
            let (version, pending) = migrations.inspect(&config, target).await?;
            return Ok(TenantMigration {
                tenant_id: id,
                from_version: version,
                to_version: version,
                applied: 0,
                dry_run,
                pending,
            });
        }
        let outcome = migrations.migrate_database(&config, target).await?;
        self.catalog
            .set_schema_version(id, outcome.to_version)
            .await?;
        Ok(TenantMigration {
            tenant_id: id,
            from_version: outcome.from_version,
            to_version: outcome.to_version,
            applied: outcome.applied,
            dry_run,
            pending: Vec::new(),
        })
    }
}
