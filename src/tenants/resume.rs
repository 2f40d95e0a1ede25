//! Finishing an operation another process left (it died, lost its lease, or
//! went silent), under the lease the reconciler claimed for it. Each kind
//! resumes from what the catalog and the servers say now: forward where the
//! operation's own record says it may (a create, a move past its cutover, a
//! restore past its swap), back otherwise.

use super::{Tenants, TenantsError, Transition};
use crate::catalog::{OpKind, Operation, TenantChange};
use crate::domain::{DbName, TenantId, TenantStatus};
use crate::error_code::ErrorCode;
use crate::operations::Lease;

impl Tenants {
    /// Finishes `op` (claimed as `lease`) the way its kind requires.
    pub async fn resume(&self, op: &Operation, lease: &Lease) -> Result<(), TenantsError> {
        let kind = op.kind;
        let tenant_id = TenantId::from(
            op.tenant_id
                .ok_or(TenantsError::Inconsistent("operation without a tenant"))?,
        );
        let record = self
            .catalog
            .get_tenant(tenant_id)
            .await?
            .ok_or(TenantsError::Inconsistent("operation on a missing tenant"))?;
        tracing::info!(op = %op.id, kind = %op.kind, tenant.id = %tenant_id, attempts = op.attempts, "resuming an operation another process left");
        lease
            .guard(async {
                match kind {
                    OpKind::CreateTenant if record.status != TenantStatus::Provisioning => {
                        lease
                            .fail(
                                tenant_id,
                                ErrorCode::Interrupted,
                                "a create of a tenant that is not provisioning",
                            )
                            .await?;
                        Ok(())
                    }
                    OpKind::CreateTenant => {
                        let server = self.server_of(&record).await?;
                        // Rolls forward; on failure it drops what was made
                        // and marks the tenant failed.
                        self.finish_create(&record, &server, lease)
                            .await
                            .map(|_| ())
                    }
                    OpKind::CreateSubtenant => {
                        let change = TenantChange {
                            status: Some(TenantStatus::Active),
                            ..TenantChange::default()
                        };
                        lease.finish(tenant_id, None, &change).await?;
                        Ok(())
                    }
                    OpKind::Move => Ok(self.finish_move(&record, op, lease).await?),
                    OpKind::RestoreBackup => Ok(self.finish_restore(&record, op, lease).await?),
                    OpKind::Migrate => self.finish_migration(&record, op, lease).await,
                    OpKind::SubtenantPurge => self.finish_subtenant_purge(&record, op, lease).await,
                    OpKind::Backup => {
                        lease
                            .end(
                                crate::catalog::Ending::Failed,
                                Some(ErrorCode::Interrupted),
                                Some("the process writing the backup stopped; take another"),
                            )
                            .await?;
                        Ok(())
                    }
                    OpKind::Unknown => Err(TenantsError::Inconsistent("unknown operation kind")),
                    OpKind::Drain
                    | OpKind::FleetRun
                    | OpKind::RestoreAsNew
                    | OpKind::DriftScan
                    | OpKind::BaseBackup
                    | OpKind::Rebalance
                    | OpKind::FleetRevert => Err(TenantsError::Inconsistent(
                        "drains and fleet runs are resumed by the reconciler",
                    )),
                    OpKind::Repair => {
                        lease
                            .fail(
                                tenant_id,
                                ErrorCode::Interrupted,
                                "interrupted; run doctor again",
                            )
                            .await?;
                        Ok(())
                    }
                    OpKind::Suspend
                    | OpKind::Resume
                    | OpKind::Delete
                    | OpKind::Restore
                    | OpKind::Purge => {
                        let transition = Transition::from_kind(kind).expect("a transition's kind");
                        self.finish_transition(&record, transition, lease)
                            .await
                            .map(|_| ())
                    }
                }
            })
            .await
    }

    /// A migration runs again (each step is its own transaction, under the
    /// database's advisory lock), then records the version it reached.
    async fn finish_migration(
        &self,
        record: &crate::catalog::TenantRecord,
        op: &Operation,
        lease: &Lease,
    ) -> Result<(), TenantsError> {
        let target = op
            .params
            .get("target")
            .and_then(|t| t.as_i64())
            .and_then(|t| i32::try_from(t).ok());
        let server = self.server_of(record).await?;
        let config = self
            .provisioner
            .admin_config(&server, DbName::for_tenant(record.id).as_str())?;
        match self
            .provisioner
            .migrations()
            .migrate_database(&config, target)
            .await
        {
            Ok(outcome) => {
                let change = TenantChange {
                    schema_version: Some(outcome.to_version),
                    error: record.error.clone(),
                    ..TenantChange::default()
                };
                lease.finish(record.id, None, &change).await?;
                Ok(())
            }
            Err(e) => {
                let e = TenantsError::from(e);
                lease.fail(record.id, e.code(), &e.to_string()).await?;
                Err(e)
            }
        }
    }

    /// Deleting a subtenant's rows again deletes nothing more.
    async fn finish_subtenant_purge(
        &self,
        root: &crate::catalog::TenantRecord,
        op: &Operation,
        lease: &Lease,
    ) -> Result<(), TenantsError> {
        let subtenant = op
            .params
            .get("subtenant")
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse::<TenantId>().ok())
            .ok_or(TenantsError::Inconsistent(
                "a subtenant purge without its subtenant",
            ))?;
        if root.db_server_id.is_some() && root.purged_at.is_none() {
            let server = self.server_of(root).await?;
            self.provisioner
                .purge_subtenant_rows(&server, &DbName::for_tenant(root.id), subtenant.as_uuid())
                .await?;
        }
        lease
            .finish(root.id, None, &TenantChange::default())
            .await?;
        Ok(())
    }
}
