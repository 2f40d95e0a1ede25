//! `Backups`: taking a root tenant's backup into the backup location, and
//! restoring one (from the location or from an archive file), in place or
//! as a new tenant, with the queries that list them.
//!
//! Router notices: a restore brings a new database, so the restored
//! tenant's route and sessions go once it ended, and the source tenant's
//! too (an in-place restore's database was swapped under it).

use uuid::Uuid;

use super::{launch, Launched};
use crate::backup::VerifiedArchive;
use crate::catalog::{BackupReason, BackupRecord};
use crate::control_audit::Actor;
use crate::domain::TenantId;
use crate::tenants::{BackupsError, RestoreReport, RestoreTarget, Tenants};

/// The backup commands and queries.
#[derive(Clone)]
pub struct Backups {
    tenants: Tenants,
}

impl Backups {
    pub fn new(tenants: Tenants) -> Self {
        Self { tenants }
    }

    /// Begins a backup of root tenant `id` into the backup location.
    pub async fn take(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<Launched<BackupRecord, BackupsError>, BackupsError> {
        let t = &self.tenants;
        let resource = format!("tenants/{id}/backups");
        let what = (Some(id), "tenants.backup", resource.as_str());
        let change = t.start_backup(id, BackupReason::Manual);
        let started = t.audited(actor, what, change, |_| None).await?;
        Ok(launch(started, |run| run))
    }

    /// Begins restoring backup `backup` of `tenant` from the backup
    /// location: in place (the tenant must be suspended or deleted) or as a
    /// new tenant.
    pub async fn restore(
        &self,
        actor: &Actor,
        tenant: TenantId,
        backup: Uuid,
        target: RestoreTarget,
    ) -> Result<Launched<RestoreReport, BackupsError>, BackupsError> {
        let t = &self.tenants;
        let resource = format!("tenants/{tenant}/backups/{backup}");
        let what = (Some(tenant), "tenants.restore_backup", resource.as_str());
        let change = t.start_restore(tenant, backup, target);
        let started = t.audited(actor, what, change, |_| None).await?;
        Ok(self.launch_restore(started, tenant))
    }

    /// A restore of `tenant` launched: once it has ended, the routes and
    /// sessions of the tenant restored and of the source go (the restored
    /// database is new; an in-place one was swapped under the source).
    fn launch_restore(
        &self,
        started: crate::tenants::backups::Started<RestoreReport>,
        tenant: TenantId,
    ) -> Launched<RestoreReport, BackupsError> {
        let routes = self.tenants.routes.clone();
        launch(started, move |run| async move {
            let result = run.await;
            if let Ok(report) = &result {
                routes.tenant_changed(report.tenant.id, true).await;
            }
            routes.tenant_changed(tenant, true).await;
            result
        })
    }

    /// Begins restoring `tenant` as of `at` from its server's WAL archive:
    /// in place (the tenant must be suspended or deleted) or as a new tenant.
    pub async fn restore_to_time(
        &self,
        actor: &Actor,
        tenant: TenantId,
        at: chrono::DateTime<chrono::Utc>,
        target: RestoreTarget,
    ) -> Result<Launched<RestoreReport, BackupsError>, BackupsError> {
        let t = &self.tenants;
        let resource = format!("tenants/{tenant}/restore-to-time");
        let what = (Some(tenant), "tenants.restore_to_time", resource.as_str());
        let change = t.start_restore_to_time(tenant, at, target);
        let started = t.audited(actor, what, change, |_| None).await?;
        Ok(self.launch_restore(started, tenant))
    }

    /// The times `tenant` can be restored to.
    pub async fn recovery_window(
        &self,
        tenant: TenantId,
    ) -> Result<crate::tenants::RecoveryWindow, BackupsError> {
        self.tenants.recovery_window(tenant).await
    }

    /// Restores an archive file, already read and verified (the CLI's
    /// `restore --file`); answers when it is done.
    pub async fn restore_archive(
        &self,
        actor: &Actor,
        archive: &VerifiedArchive,
        target: RestoreTarget,
    ) -> Result<RestoreReport, BackupsError> {
        let t = &self.tenants;
        let source = archive.manifest.tenant_id;
        let resource = format!("tenants/{source}");
        let what = (Some(source), "tenants.restore_backup", resource.as_str());
        let restore = t.restore_backup(archive, target);
        let report = t
            .audited(actor, what, restore, |r| {
                Some((Some(r.tenant.id), format!("tenants/{}", r.tenant.id)))
            })
            .await?;
        t.routes.tenant_changed(report.tenant.id, true).await;
        t.routes.tenant_changed(source, true).await;
        Ok(report)
    }

    /// The kept backups of `tenant`, newest first; a purged tenant's too
    /// (its final one is what restore-as-new brings it back from).
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<BackupRecord>, BackupsError> {
        let catalog = &self.tenants.catalog;
        if catalog.get_tenant(tenant).await?.is_none() {
            return Err(BackupsError::NotFound);
        }
        Ok(catalog.list_backups(tenant).await?)
    }

    /// A kept backup of `tenant`.
    pub async fn show(&self, tenant: TenantId, backup: Uuid) -> Result<BackupRecord, BackupsError> {
        self.tenants.backup_of(tenant, backup).await
    }
}
