//! `Lifecycle`: creating tenants and subtenants, changing them, their
//! state (suspend, resume, delete, restore, purge) and their schema, with
//! the queries that show them.
//!
//! Router notices: a change of name, tier or settings makes the route
//! stale; a suspension, a delete and a purge also close the tenant's
//! sessions; a resume and an undelete need no session closed.

use serde::Serialize;

use super::Launched;
use crate::catalog::{HistoryEntry, TenantFilter};
use crate::control_audit::Actor;
use crate::domain::TenantId;
use crate::tenants::{
    NewSubtenantInput, NewTenantInput, TenantList, TenantMigration, TenantPatch, TenantRevert,
    TenantView, Tenants, TenantsError, Transition,
};

/// The tenant lifecycle's commands and queries.
#[derive(Clone)]
pub struct Lifecycle {
    tenants: Tenants,
}

/// A tenant's schema version and its items in fleet runs, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationHistory {
    pub schema_version: i32,
    /// The newest version this build's tenant migrations know.
    pub latest_version: i32,
    pub history: Vec<HistoryEntry>,
    /// Its reverts (of a run, or on request), newest first.
    pub reverts: Vec<crate::catalog::RevertItem>,
}

impl Lifecycle {
    pub fn new(tenants: Tenants) -> Self {
        Self { tenants }
    }

    /// A root tenant with a database of its own.
    pub async fn create(
        &self,
        actor: &Actor,
        input: NewTenantInput,
    ) -> Result<TenantView, TenantsError> {
        let t = &self.tenants;
        let what = (None, "tenants.create", "tenants");
        t.audited(actor, what, t.create(input), |v| {
            Some((Some(v.id), format!("tenants/{}", v.id)))
        })
        .await
    }

    /// A subtenant in its root tenant's database.
    pub async fn create_subtenant(
        &self,
        actor: &Actor,
        parent: TenantId,
        input: NewSubtenantInput,
    ) -> Result<TenantView, TenantsError> {
        let t = &self.tenants;
        let resource = format!("tenants/{parent}/subtenants");
        let what = (Some(parent), "tenants.create_subtenant", resource.as_str());
        t.audited(actor, what, t.create_subtenant(parent, input), |v| {
            Some((Some(parent), format!("tenants/{}", v.id)))
        })
        .await
    }

    /// Name, tier or settings.
    pub async fn update(
        &self,
        actor: &Actor,
        id: TenantId,
        patch: TenantPatch,
    ) -> Result<TenantView, TenantsError> {
        let t = &self.tenants;
        let resource = format!("tenants/{id}");
        let what = (Some(id), "tenants.update", resource.as_str());
        let view = t
            .audited(actor, what, t.update(id, patch), |_| None)
            .await?;
        t.routes.tenant_changed(id, false).await;
        Ok(view)
    }

    /// Suspend, resume, delete or restore (a purge is long: `purge`, which
    /// this waits for when given one).
    pub async fn change_state(
        &self,
        actor: &Actor,
        id: TenantId,
        transition: Transition,
    ) -> Result<TenantView, TenantsError> {
        if transition == Transition::Purge {
            return self.purge(actor, id).await?.wait().await;
        }
        let t = &self.tenants;
        let action = format!("tenants.{}", transition.verb());
        let resource = format!("tenants/{id}");
        let what = (Some(id), action.as_str(), resource.as_str());
        let change = t.transition(id, transition);
        let view = t.audited(actor, what, change, |_| None).await?;
        let close_pool = !matches!(transition, Transition::Resume | Transition::Restore);
        t.routes.tenant_changed(id, close_pool).await;
        Ok(view)
    }

    /// Purges a deleted tenant: a final backup (with a backup location),
    /// then its database and role dropped, as an operation.
    pub async fn purge(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<Launched<TenantView>, TenantsError> {
        let t = &self.tenants;
        let change = t.start_transition(id, Transition::Purge);
        t.launch_tenant_change(actor, (id, "tenants.purge", "purge"), change)
            .await
    }

    /// Migrates one tenant's database (up to `target`) under its lock; a
    /// dry run lists what would run, changes nothing and has no record.
    pub async fn migrate(
        &self,
        actor: &Actor,
        id: TenantId,
        target: Option<i32>,
        dry_run: bool,
        allow_drift: bool,
    ) -> Result<TenantMigration, TenantsError> {
        let t = &self.tenants;
        let migrate = t.migrate(id, target, dry_run, allow_drift);
        if dry_run {
            return migrate.await;
        }
        let resource = format!("tenants/{id}");
        let what = (Some(id), "tenants.migrate", resource.as_str());
        t.audited(actor, what, migrate, |_| None).await
    }

    /// Reverts one tenant's database to `target` with the down migrations,
    /// under its lock (`tenants/revert.rs`).
    pub async fn revert(
        &self,
        actor: &Actor,
        id: TenantId,
        target: i32,
        accept_data_loss: bool,
    ) -> Result<TenantRevert, TenantsError> {
        let t = &self.tenants;
        let resource = format!("tenants/{id}");
        let what = (Some(id), "tenants.revert_migrations", resource.as_str());
        let revert = t.revert(id, target, accept_data_loss);
        t.audited(actor, what, revert, |_| None).await
    }

    pub async fn show(&self, id: TenantId) -> Result<TenantView, TenantsError> {
        self.tenants.show(id).await
    }

    pub async fn list(&self, filter: TenantFilter) -> Result<TenantList, TenantsError> {
        self.tenants.list(filter).await
    }

    /// The tenant's schema version and migration history.
    pub async fn migration_history(
        &self,
        id: TenantId,
        limit: i64,
    ) -> Result<MigrationHistory, TenantsError> {
        let t = &self.tenants;
        let tenant = t.show(id).await?;
        Ok(MigrationHistory {
            schema_version: tenant.schema_version,
            latest_version: t.provisioner.migrations().latest_version(),
            history: t.catalog.migration_history(id, limit).await?,
            reverts: t.catalog.tenant_reverts(id, limit).await?,
        })
    }
}
