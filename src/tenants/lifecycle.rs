//! Suspend, resume, soft delete, restore and purge. For a root tenant each has
//! a side effect in PostgreSQL (CONNECT revoked or granted, or the database
//! and role dropped), so the state holds even if a routing bug leaks a pool.
//!
//! Each one begins its operation first and decides on the tenant as read
//! under that lock, so a concurrent move or purge cannot change what it
//! acts on. A purge is allowed only from `deleted`, and drops the database
//! only after checking again, under the operation's row lock, that the
//! catalog still says so.
//!
//! Rule: with `backup.location` set, a purge keeps a final backup first,
//! and does not happen without one.

use serde::Serialize;

use super::{Started, TenantView, Tenants, TenantsError};
use crate::catalog::{Cascade, Failure, OpKind, TenantChange, TenantRecord};
use crate::domain::{DbName, TenantId, TenantStatus};
use crate::operations::Lease;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    Suspend,
    Resume,
    /// Soft delete: the database is kept for the retention period.
    Delete,
    Restore,
    /// Drops the database and the role; the catalog row stays for audit.
    Purge,
}

impl Transition {
    pub fn kind(self) -> OpKind {
        match self {
            Self::Suspend => OpKind::Suspend,
            Self::Resume => OpKind::Resume,
            Self::Delete => OpKind::Delete,
            Self::Restore => OpKind::Restore,
            Self::Purge => OpKind::Purge,
        }
    }

    pub fn from_kind(kind: OpKind) -> Option<Self> {
        Some(match kind {
            OpKind::Suspend => Self::Suspend,
            OpKind::Resume => Self::Resume,
            OpKind::Delete => Self::Delete,
            OpKind::Restore => Self::Restore,
            OpKind::Purge => Self::Purge,
            OpKind::CreateTenant
            | OpKind::CreateSubtenant
            | OpKind::Move
            | OpKind::RestoreBackup
            | OpKind::Migrate
            | OpKind::Repair
            | OpKind::SubtenantPurge
            | OpKind::Drain
            | OpKind::FleetRun
            | OpKind::Backup
            | OpKind::RestoreAsNew
            | OpKind::DriftScan
            | OpKind::FleetRevert
            | OpKind::BaseBackup
            | OpKind::Rebalance
            | OpKind::Unknown => return None,
        })
    }

    pub fn verb(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Delete => "delete",
            Self::Restore => "restore",
            Self::Purge => "purge",
        }
    }

    fn allowed_from(self, status: TenantStatus) -> bool {
        use TenantStatus::*;
        match self {
            Self::Suspend => status == Active,
            Self::Resume => status == Suspended,
            Self::Delete => matches!(status, Active | Suspended | Failed),
            Self::Restore => status == Deleted,
            Self::Purge => status == Deleted,
        }
    }

    fn change(self) -> TenantChange {
        let (status, deleted, purged, cascade) = match self {
            Self::Suspend => (TenantStatus::Suspended, None, false, Cascade::None),
            Self::Resume => (TenantStatus::Active, None, false, Cascade::None),
            Self::Delete => (TenantStatus::Deleted, Some(true), false, Cascade::Delete),
            Self::Restore => (TenantStatus::Active, Some(false), false, Cascade::Restore),
            Self::Purge => (TenantStatus::Deleted, None, true, Cascade::Purge),
        };
        TenantChange {
            status: Some(status),
            deleted,
            purged,
            cascade,
            ..TenantChange::default()
        }
    }
}

impl Tenants {
    #[tracing::instrument(skip_all, fields(tenant.id = %id, transition = ?transition))]
    pub async fn transition(
        &self,
        id: TenantId,
        transition: Transition,
    ) -> Result<TenantView, TenantsError> {
        self.transition_if(id, transition, |_| true)
            .await?
            .ok_or(TenantsError::NotFound)
    }

    /// Like `transition`, when `condition` holds for the tenant as read
    /// under its lock; `None` (and nothing done) when it does not. The
    /// retention purge uses it, so a tenant restored since it was listed
    /// is never dropped.
    pub async fn transition_if(
        &self,
        id: TenantId,
        transition: Transition,
        condition: impl FnOnce(&TenantRecord) -> bool,
    ) -> Result<Option<TenantView>, TenantsError> {
        match self.start_transition_if(id, transition, condition).await? {
            Some(Started { run: Some(run), .. }) => run.await.map(Some),
            _ => Ok(None),
        }
    }

    /// Begins a transition (checked under the tenant's lock); its side
    /// effect runs when `run` is awaited. A purge is answered this way.
    pub async fn start_transition(
        &self,
        id: TenantId,
        transition: Transition,
    ) -> Result<Started<TenantView>, TenantsError> {
        self.start_transition_if(id, transition, |_| true)
            .await?
            .ok_or(TenantsError::NotFound)
    }

    async fn start_transition_if(
        &self,
        id: TenantId,
        transition: Transition,
        condition: impl FnOnce(&TenantRecord) -> bool,
    ) -> Result<Option<Started<TenantView>>, TenantsError> {
        let (record, lease) = self
            .ops
            .begin(id, transition.kind(), &serde_json::json!({}))
            .await?;
        let refusal = if record.purged_at.is_some() {
            Some(Err(TenantsError::NotFound))
        } else if !condition(&record) {
            Some(Ok(None))
        } else if !transition.allowed_from(record.status) {
            Some(Err(match transition {
                Transition::Purge => TenantsError::NotDeleted,
                _ => TenantsError::InvalidState {
                    action: transition.verb(),
                    status: record.status,
                },
            }))
        } else {
            None
        };
        if let Some(refused) = refusal {
            lease.discard().await?;
            return refused;
        }
        if let (Transition::Restore | Transition::Resume, Some(parent)) =
            (transition, record.parent_id)
        {
            if self.record(parent).await?.status != TenantStatus::Active {
                lease.discard().await?;
                return Err(TenantsError::ParentNotActive);
            }
        }
        let tenants = self.clone();
        let op = lease.op();
        let run = async move {
            lease
                .guard(tenants.finish_transition(&record, transition, &lease))
                .await
        };
        Ok(Some(Started::new(op, run)))
    }

    /// The side effect, then the catalog change. Idempotent, so the
    /// reconciler can repeat it for an operation a crash interrupted.
    pub(crate) async fn finish_transition(
        &self,
        record: &TenantRecord,
        transition: Transition,
        lease: &Lease,
    ) -> Result<TenantView, TenantsError> {
        if let Err(e) = self.side_effect(record, transition, lease).await {
            if matches!(e, TenantsError::Abandoned(_)) {
                return Err(e);
            }
            let message = e.to_string();
            // The tenant keeps its status; the failed operation releases the lock.
            lease
                .finish(
                    record.id,
                    Some(Failure {
                        code: e.code(),
                        message: &message,
                    }),
                    &TenantChange {
                        error: record.error.clone(),
                        ..TenantChange::default()
                    },
                )
                .await?;
            return Err(e);
        }
        let done = lease
            .finish(record.id, None, &transition.change())
            .await?
            .ok_or(TenantsError::NotFound)?;
        if transition == Transition::Purge {
            tracing::info!(tenant.id = %record.id, "tenant purged");
        }
        self.view(&done).await
    }

    /// Deletes a subtenant's rows from its root's database. The root's own
    /// operation lock is taken for it, so no move or restore of the root
    /// (whose copy could bring the rows back) runs meanwhile; the subtenant
    /// is marked deleted first, so that no replica routes writes to it.
    async fn purge_subtenant_rows(
        &self,
        root: TenantId,
        subtenant: TenantId,
    ) -> Result<(), TenantsError> {
        let (root, root_lease) = self
            .ops
            .begin(
                root,
                OpKind::SubtenantPurge,
                &serde_json::json!({ "subtenant": subtenant }),
            )
            .await
            .map_err(TenantsError::from)?;
        let purged = root_lease
            .guard(async {
                self.catalog.mark_deleted(subtenant).await?;
                if root.db_server_id.is_some() && root.purged_at.is_none() {
                    let server = self.server_of(&root).await?;
                    self.provisioner
                        .purge_subtenant_rows(
                            &server,
                            &DbName::for_tenant(root.id),
                            subtenant.as_uuid(),
                        )
                        .await?;
                }
                Ok::<_, TenantsError>(())
            })
            .await;
        match &purged {
            Ok(()) => root_lease
                .finish(root.id, None, &TenantChange::default())
                .await
                .map(|_| ())?,
            Err(TenantsError::Abandoned(_)) => {}
            Err(e) => root_lease.fail(root.id, e.code(), &e.to_string()).await?,
        }
        purged
    }

    async fn side_effect(
        &self,
        record: &TenantRecord,
        transition: Transition,
        lease: &Lease,
    ) -> Result<(), TenantsError> {
        // Subtenants live in their root's database: their state is the
        // catalog's alone, and a purge deletes their rows there.
        if let Some(root) = record.parent_id {
            if transition == Transition::Purge {
                return self.purge_subtenant_rows(root, record.id).await;
            }
            return Ok(());
        }
        if record.db_server_id.is_none() || record.db_name.is_none() {
            return Ok(());
        }
        let server = self.server_of(record).await?;
        let db = DbName::for_tenant(record.id);
        // A purge interrupted after its drop has nothing left to back up.
        if transition == Transition::Purge
            && self.provisioner.presence(&server, &db).await?.database
        {
            self.final_backup(record).await?;
        }
        if transition == Transition::Purge {
            crate::failpoint!("purge.before_drop");
        }
        // Checked again under the operation's step lock, right before
        // acting: the catalog must still place the tenant there, in the state
        // this operation began from.
        let held = lease.hold().await?;
        let now = held
            .tenant(record.id)
            .await?
            .ok_or(TenantsError::NotFound)?;
        if now.db_server_id != record.db_server_id || now.status != record.status {
            return Err(TenantsError::Inconsistent(
                "the tenant changed under its own operation lock",
            ));
        }
        match transition {
            Transition::Suspend | Transition::Delete => {
                self.provisioner.set_connect(&server, &db, false).await?
            }
            Transition::Resume | Transition::Restore => {
                self.provisioner.set_connect(&server, &db, true).await?
            }
            Transition::Purge => self.provisioner.drop_tenant_database(&server, &db).await?,
        }
        held.release().await;
        if transition == Transition::Purge {
            crate::failpoint!("purge.after_drop");
        }
        Ok(())
    }
}
