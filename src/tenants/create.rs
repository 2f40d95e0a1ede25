//! Creating tenants (a database of their own, cloned from the template) and
//! subtenants (rows in their root tenant's database).
//!
//! Rule: a create whose server stopped being `active` before it was placed
//! (its placement transaction refused it) picks a server again.

use super::view::stored_config;
use super::{role_purpose, settings_purpose, TenantView, Tenants, TenantsError};
use crate::catalog::{
    CatalogError, DbServer, Failure, NewTenant, OpKind, TenantChange, TenantRecord,
};
use crate::crypto::random_hex_secret;
use crate::domain::{DbName, Slug, TenantId, TenantName, TenantStatus, Tier};
use crate::operations::Lease;
use crate::tenant_config::{check_narrowing, resolved, split_secrets, TenantConfig};

/// A new root tenant, already validated.
#[derive(Debug, Clone)]
pub struct NewTenantInput {
    pub name: TenantName,
    pub slug: Slug,
    pub tier: Tier,
    pub settings: TenantConfig,
}

/// A new subtenant, already validated.
#[derive(Debug, Clone)]
pub struct NewSubtenantInput {
    pub name: TenantName,
    pub slug: Slug,
    pub settings: TenantConfig,
}

impl Tenants {
    /// Records the tenant, clones its database from the template, gives it a
    /// login role only it can use, and runs any pending migrations. On failure
    /// the half-made database and role are dropped and the tenant is `failed`.
    #[tracing::instrument(skip_all, fields(tenant.slug = %input.slug))]
    pub async fn create(&self, input: NewTenantInput) -> Result<TenantView, TenantsError> {
        let started = std::time::Instant::now();
        let result = self.create_root(input).await;
        crate::telemetry::metrics::record_operation("tenant_create", started, result.is_ok());
        result
    }

    async fn create_root(&self, input: NewTenantInput) -> Result<TenantView, TenantsError> {
        let id = TenantId::generate();
        let db = DbName::for_tenant(id);
        let password = random_hex_secret();
        let mut settings = input.settings;
        let secrets = split_secrets(&mut settings);
        let mut new = NewTenant {
            id,
            slug: input.slug.clone(),
            name: input.name.as_str().to_string(),
            parent_id: None,
            tier: input.tier,
            status: TenantStatus::Provisioning,
            db_server_id: None,
            db_name: Some(db.clone()),
            db_password_enc: Some(self.master_key.seal(
                &role_purpose(id),
                secrecy::ExposeSecret::expose_secret(&password).as_bytes(),
            )),
            schema_version: 0,
            settings: serde_json::to_value(&settings).expect("settings serialise"),
            settings_secrets_enc: Some(
                self.master_key
                    .seal(&settings_purpose(id), secrets.to_string().as_bytes()),
            ),
        };
        let (server, record, lease) = self.place_root(&mut new, OpKind::CreateTenant).await?;
        tracing::info!(tenant.id = %id, op = %lease.op(), "creating tenant database");
        crate::failpoint!("create.after_insert");
        let mut view = lease
            .guard(self.finish_create(&record, &server, &lease))
            .await?;
        view.operation_id = Some(lease.op());
        Ok(view)
    }

    /// Records a new root tenant, with its operation, on the server
    /// placement picks. The record's transaction refuses a server that is
    /// no longer active (a drain marked it after the pick); then this picks
    /// again, so a create never lands on a draining server and does not fail
    /// because one began draining under it.
    pub(super) async fn place_root(
        &self,
        new: &mut NewTenant,
        kind: OpKind,
    ) -> Result<(DbServer, TenantRecord, Lease), TenantsError> {
        // Each refusal means a server stopped taking tenants; a few in a
        // row mean the fleet is changing faster than placement can follow.
        const TRIES: usize = 5;
        for _ in 0..TRIES {
            let server = self
                .catalog
                .pick_server(new.tier)
                .await?
                .ok_or(TenantsError::NoServer)?;
            crate::failpoint!("create.after_pick");
            new.db_server_id = Some(server.id);
            match self.ops.begin_with_tenant(new, kind).await {
                Ok((record, lease)) => return Ok((server, record, lease)),
                Err(CatalogError::ServerNotActive) => {
                    tracing::info!(server = %server.name, "the picked server stopped taking tenants; picking again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(TenantsError::NoServer)
    }

    /// The side effects of a create, then its completion. Idempotent: the
    /// reconciler calls it again for a create that a crash interrupted.
    pub(crate) async fn finish_create(
        &self,
        record: &TenantRecord,
        server: &DbServer,
        lease: &Lease,
    ) -> Result<TenantView, TenantsError> {
        match self.provision(record, server).await {
            Ok(version) => {
                crate::failpoint!("create.before_finish");
                let change = TenantChange {
                    status: Some(TenantStatus::Active),
                    schema_version: Some(version),
                    ..TenantChange::default()
                };
                let done = lease
                    .finish(record.id, None, &change)
                    .await?
                    .ok_or(TenantsError::NotFound)?;
                self.view(&done).await
            }
            Err(e @ TenantsError::Abandoned(_)) => Err(e),
            Err(e) => {
                tracing::error!(tenant.id = %record.id, error = %format!("{e:#}"), "tenant creation failed; undoing it");
                self.undo_create(record, server, lease, &e).await;
                Err(e)
            }
        }
    }

    async fn provision(
        &self,
        record: &TenantRecord,
        server: &DbServer,
    ) -> Result<i32, TenantsError> {
        let db = DbName::for_tenant(record.id);
        let password = self.role_password(record)?;
        self.provisioner
            .create_tenant_database(server, &db, &password)
            .await?;
        crate::failpoint!("create.after_clone");
        // A clone of a template this process brought to the newest version
        // has nothing pending; only an older template needs a run.
        let migrations = self.provisioner.migrations();
        match self.provisioner.template_version(server.id) {
            Some(version) if version >= migrations.latest_version() => Ok(version),
            _ => {
                let config = self.provisioner.admin_config(server, db.as_str())?;
                Ok(migrations.migrate_database(&config, None).await?.to_version)
            }
        }
    }

    /// Drops what a failed create made, under the operation's row lock and
    /// only while the catalog still says the tenant is being provisioned
    /// there; then marks it failed and frees its slug. If the drop fails,
    /// the operation is released for the reconciler to retry.
    pub(crate) async fn undo_create(
        &self,
        record: &TenantRecord,
        server: &DbServer,
        lease: &Lease,
        cause: &TenantsError,
    ) {
        let db = DbName::for_tenant(record.id);
        let dropped = async {
            let held = lease.hold().await?;
            let now = held
                .tenant(record.id)
                .await?
                .ok_or(TenantsError::NotFound)?;
            if now.status != TenantStatus::Provisioning || now.db_server_id != Some(server.id) {
                return Err(TenantsError::Inconsistent(
                    "the tenant changed under its own operation lock",
                ));
            }
            self.provisioner.drop_tenant_database(server, &db).await?;
            held.release().await;
            Ok::<_, TenantsError>(())
        }
        .await;
        if let Err(e) = dropped {
            tracing::error!(tenant.id = %record.id, error = %e, "could not drop a half-made tenant database; the reconciler retries");
            lease.release("undoing the create failed").await;
            return;
        }
        // Nothing is left of the tenant: mark it failed and free its slug.
        let change = TenantChange {
            status: Some(TenantStatus::Failed),
            error: Some(cause.to_string()),
            purged: true,
            ..TenantChange::default()
        };
        if let Err(e) = lease
            .finish(
                record.id,
                Some(Failure {
                    code: cause.code(),
                    message: &cause.to_string(),
                }),
                &change,
            )
            .await
        {
            tracing::error!(tenant.id = %record.id, error = %e, "could not record a failed create");
        }
    }

    /// A subtenant shares its root tenant's database; its own settings may
    /// only narrow the root's.
    #[tracing::instrument(skip_all, fields(tenant.id = %parent))]
    pub async fn create_subtenant(
        &self,
        parent: TenantId,
        input: NewSubtenantInput,
    ) -> Result<TenantView, TenantsError> {
        let root = self.record(parent).await?;
        if root.parent_id.is_some() {
            return Err(TenantsError::TooDeep);
        }
        if root.status != TenantStatus::Active {
            return Err(TenantsError::ParentNotActive);
        }
        check_narrowing(
            &input.settings,
            &resolved(root.tier, &stored_config(&root), None),
        )
        .map_err(TenantsError::ExceedsParent)?;
        let id = TenantId::generate();
        let mut settings = input.settings;
        let secrets = split_secrets(&mut settings);
        let new = NewTenant {
            id,
            slug: input.slug.clone(),
            name: input.name.as_str().to_string(),
            parent_id: Some(parent),
            tier: root.tier,
            status: TenantStatus::Active,
            db_server_id: None,
            db_name: None,
            db_password_enc: None,
            schema_version: 0,
            settings: serde_json::to_value(&settings).expect("settings serialise"),
            settings_secrets_enc: Some(
                self.master_key
                    .seal(&settings_purpose(id), secrets.to_string().as_bytes()),
            ),
        };
        let (record, fence) = self
            .ops
            .insert_finished(&new, OpKind::CreateSubtenant)
            .await?;
        let mut view = super::view::build_view(&record, Some(&root));
        view.operation_id = Some(fence.op);
        Ok(view)
    }
}
