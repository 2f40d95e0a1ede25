//! Reverting one tenant's database to an earlier schema version, on
//! request, with the down migrations.
//!
//! Rules:
//! - Under the tenant's operation lock (a `migrate` operation), as a
//!   migration on request is (`migrate.rs`): never beside a move, a restore
//!   or a purge of it. An interrupted one is finished by the reconciler as
//!   a migration is: the database's own version is recorded.
//! - Every down the revert needs is checked before anything runs: a missing
//!   one is `no_down_migration` naming the version (V1 has none: reverting
//!   it would drop the whole schema), a destructive one without
//!   `accept_data_loss` is `data_loss_not_accepted`.
//! - The new version is recorded in the catalog with the operation's end,
//!   and in the tenant's migration history (a revert ledger row); a drift
//!   record about that version, older than the revert, becomes unknown.

use serde::Serialize;

use super::{Tenants, TenantsError};
use crate::catalog::{OpKind, TenantChange};
use crate::domain::TenantId;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantRevert {
    pub tenant_id: TenantId,
    pub from_version: i32,
    pub to_version: i32,
    /// Versions undone.
    pub reverted: usize,
}

impl Tenants {
    /// Reverts a root tenant's database to `target`, under its operation lock.
    #[tracing::instrument(skip_all, fields(tenant.id = %id, target))]
    pub async fn revert(
        &self,
        id: TenantId,
        target: i32,
        accept_data_loss: bool,
    ) -> Result<TenantRevert, TenantsError> {
        let params = serde_json::json!({ "target": target, "revert": true });
        let (record, lease) = self.ops.begin(id, OpKind::Migrate, &params).await?;
        let checked = async {
            let config = self.migration_config(&record).await?;
            // Refused before any session opens, from the recorded version;
            // the migrator checks again against the database's own history.
            self.provisioner.migrations().check_revert(
                record.schema_version,
                target,
                accept_data_loss,
            )?;
            Ok::<_, TenantsError>(config)
        };
        let config = match checked.await {
            Ok(config) => config,
            Err(e) => {
                lease.discard().await?;
                return Err(e);
            }
        };
        let reverted = lease
            .guard(async {
                Ok::<_, TenantsError>(
                    self.provisioner
                        .migrations()
                        .revert_database(&config, target, accept_data_loss)
                        .await?,
                )
            })
            .await;
        let outcome = match reverted {
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
        if outcome.applied > 0 {
            self.catalog
                .record_tenant_revert(
                    id,
                    outcome.from_version,
                    outcome.to_version,
                    accept_data_loss,
                )
                .await?;
            self.catalog.forget_drift(id, outcome.to_version).await?;
        }
        Ok(TenantRevert {
            tenant_id: id,
            from_version: outcome.from_version,
            to_version: outcome.to_version,
            reverted: outcome.applied,
        })
    }
}
