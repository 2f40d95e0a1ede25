//! Suspend, resume, soft delete, restore and purge. For a root tenant each has
//! a side effect in PostgreSQL (CONNECT revoked or granted, or the database
//! and role dropped), so the state holds even if a routing bug leaks a pool.

use serde::Serialize;
use uuid::Uuid;

use super::{TenantView, Tenants, TenantsError};
use crate::catalog::{Cascade, OpKind, TenantChange, TenantRecord};
use crate::domain::{DbName, TenantId, TenantStatus};

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
            | OpKind::RestoreBackup => return None,
        })
    }

    fn verb(self) -> &'static str {
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
            Self::Purge => status != Provisioning,
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
        let record = self.record(id).await?;
        if !transition.allowed_from(record.status) {
            return Err(TenantsError::InvalidState {
                action: transition.verb(),
                status: record.status,
            });
        }
        if let (Transition::Restore | Transition::Resume, Some(parent)) =
            (transition, record.parent_id)
        {
            if self.record(parent).await?.status != TenantStatus::Active {
                return Err(TenantsError::ParentNotActive);
            }
        }
        let op = Uuid::now_v7();
        // Tracked before the row exists, so the reconciler never mistakes it for abandoned.
        let _in_flight = self.try_track(op);
        self.catalog
            .begin_operation(op, id, transition.kind())
            .await?;
        self.finish_transition(&record, transition, op).await
    }

    /// The side effect, then the catalog change. Idempotent, so the
    /// reconciler can repeat it for an operation a crash interrupted.
    pub(crate) async fn finish_transition(
        &self,
        record: &TenantRecord,
        transition: Transition,
        op: Uuid,
    ) -> Result<TenantView, TenantsError> {
        if let Err(e) = self.side_effect(record, transition).await {
            let message = e.to_string();
            // The tenant keeps its status; the failed operation releases the lock.
            self.catalog
                .finish_operation(
                    op,
                    record.id,
                    false,
                    Some(&message),
                    &TenantChange {
                        error: record.error.clone(),
                        ..TenantChange::default()
                    },
                )
                .await?;
            return Err(e);
        }
        let done = self
            .catalog
            .finish_operation(op, record.id, true, None, &transition.change())
            .await?
            .ok_or(TenantsError::NotFound)?;
        if transition == Transition::Purge {
            tracing::info!(tenant.id = %record.id, "tenant purged");
        }
        self.view(&done).await
    }

    /// Deletes a subtenant's rows from its root's database. It is marked
    /// deleted first, so that no replica routes writes to it meanwhile; and
    /// not while the root's database is being moved or restored, whose copy
    /// could bring the rows back.
    async fn purge_subtenant_rows(
        &self,
        root: TenantId,
        subtenant: TenantId,
    ) -> Result<(), TenantsError> {
        if self.catalog.has_unfinished_operation(root).await? {
            return Err(TenantsError::Busy);
        }
        self.catalog.mark_deleted(subtenant).await?;
        let root = self.record(root).await?;
        if root.db_server_id.is_none() {
            return Ok(());
        }
        let server = self.server_of(&root).await?;
        self.provisioner
            .purge_subtenant_rows(&server, &DbName::for_tenant(root.id), subtenant.as_uuid())
            .await?;
        Ok(())
    }

    async fn side_effect(
        &self,
        record: &TenantRecord,
        transition: Transition,
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
        match transition {
            Transition::Suspend | Transition::Delete => {
                self.provisioner.set_connect(&server, &db, false).await?
            }
            Transition::Resume | Transition::Restore => {
                self.provisioner.set_connect(&server, &db, true).await?
            }
            Transition::Purge => self.provisioner.drop_tenant_database(&server, &db).await?,
        }
        Ok(())
    }
}
