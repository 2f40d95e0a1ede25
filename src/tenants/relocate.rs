//! Moving a root tenant's database to another server: copy it with dump and
//! restore while its writes are paused, verify the copy table by table,
//! switch the catalog pointer (every replica's router follows the change
//! notice), then drop the old database. Until the switch, a failure resumes
//! the tenant where it was and removes the partial copy.

use serde::Serialize;
use uuid::Uuid;

use super::{TenantView, Tenants, TenantsError};
use crate::catalog::{DbServer, OpKind, ServerState, TenantChange, TenantRecord};
use crate::domain::{DbName, TenantId, TenantStatus};
use crate::dump::table_checksums;

/// One tenant of a drain, and how its move ended.
#[derive(Debug, Clone, Serialize)]
pub struct DrainItem {
    pub tenant_id: TenantId,
    pub slug: String,
    pub to: Option<String>,
    pub error: Option<String>,
}

impl Tenants {
    /// Moves a root tenant's database to `target`; returns the tenant as placed now.
    #[tracing::instrument(skip_all, fields(tenant.id = %id, target = %target))]
    pub async fn move_tenant(
        &self,
        id: TenantId,
        target: Uuid,
    ) -> Result<TenantView, TenantsError> {
        let started = std::time::Instant::now();
        let result = self.relocate(id, target).await;
        crate::telemetry::metrics::record_operation("move", started, result.is_ok());
        result
    }

    async fn relocate(&self, id: TenantId, target: Uuid) -> Result<TenantView, TenantsError> {
        let record = self.record(id).await?;
        if record.parent_id.is_some() {
            return Err(TenantsError::InvalidState {
                action: "move a subtenant (it lives in its root's database);",
                status: record.status,
            });
        }
        if !matches!(
            record.status,
            TenantStatus::Active | TenantStatus::Suspended | TenantStatus::Deleted
        ) {
            return Err(TenantsError::InvalidState {
                action: "move",
                status: record.status,
            });
        }
        let source = self.server_of(&record).await?;
        let target = self
            .catalog
            .get_server(target)
            .await?
            .ok_or(TenantsError::ServerNotFound)?;
        if target.id == source.id {
            return Err(TenantsError::SameServer);
        }
        if target.state != ServerState::Active {
            return Err(TenantsError::ServerNotActive);
        }
        let op = Uuid::now_v7();
        let _in_flight = self.try_track(op);
        self.catalog
            .begin_operation_with(
                op,
                id,
                OpKind::Move,
                &serde_json::json!({ "source": source.id, "target": target.id }),
            )
            .await?;
        tracing::info!(from = %source.name, to = %target.name, "moving tenant");
        let db = DbName::for_tenant(id);
        match self.copy_to(&record, &source, &target, &db).await {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "move failed before the cutover; the tenant stays where it was");
                self.undo_move(&source, &target, &db).await;
                self.catalog.fail_operation(op, id, &e.to_string()).await?;
                return Err(e);
            }
        }
        // The cutover: from here on the tenant lives on `target`.
        let change = TenantChange {
            server: Some(target.id),
            ..TenantChange::default()
        };
        let moved = self
            .catalog
            .finish_operation(op, id, true, None, &change)
            .await?
            .ok_or(TenantsError::NotFound)?;
        self.retire_source(&source, &db).await;
        self.view(&moved).await
    }

    pub(crate) async fn server_of(&self, record: &TenantRecord) -> Result<DbServer, TenantsError> {
        let server_id = record
            .db_server_id
            .ok_or(TenantsError::Inconsistent("root tenant without placement"))?;
        self.catalog
            .get_server(server_id)
            .await?
            .ok_or(TenantsError::Inconsistent(
                "tenant placed on an unknown server",
            ))
    }

    /// Everything before the cutover: a verified copy on `target`, with the
    /// source paused.
    async fn copy_to(
        &self,
        record: &TenantRecord,
        source: &DbServer,
        target: &DbServer,
        db: &DbName,
    ) -> Result<(), TenantsError> {
        let password = self.role_password(record)?;
        if self.provisioner.template_version(target.id).is_none() {
            // The tenant group role the dump's grants name lives there.
            self.provisioner.prepare_server(target).await?;
        }
        self.provisioner
            .ensure_tenant_role(target, db, &password)
            .await?;
        self.provisioner.drop_database(target, db.as_str()).await?;
        self.provisioner
            .create_blank_database(target, db.as_str())
            .await?;
        // Only this tenant's writes stop; its reads go on.
        self.provisioner.set_writes_paused(source, db, true).await?;
        let source_config = self.provisioner.admin_config(source, db.as_str())?;
        let target_config = self.provisioner.admin_config(target, db.as_str())?;
        let file = tempfile::Builder::new()
            .prefix("tenant-plane-move-")
            .tempfile()
            .map_err(|e| TenantsError::copy("creating the dump file", e))?;
        self.dump.dump(&source_config, file.path()).await?;
        self.dump.restore(&target_config, file.path()).await?;
        let (before, after) = (
            table_checksums(&source_config).await?,
            table_checksums(&target_config).await?,
        );
        if before != after {
            return Err(TenantsError::Copy {
                step: "the copy's table checksums differ from the source's",
                source: None,
            });
        }
        if record.status == TenantStatus::Active {
            self.provisioner
                .grant_tenant_connect(target, db.as_str(), db)
                .await?;
        }
        Ok(())
    }

    /// Undoes a move that failed before its cutover: the source takes writes
    /// again and the partial copy goes.
    pub(crate) async fn undo_move(&self, source: &DbServer, target: &DbServer, db: &DbName) {
        if let Err(e) = self.provisioner.set_writes_paused(source, db, false).await {
            tracing::error!(error = %e, "could not resume the tenant's writes on its own server; the reconciler retries");
        }
        if let Err(e) = self.provisioner.drop_tenant_database(target, db).await {
            tracing::warn!(error = %e, server = %target.name, "could not drop a partial copy; `doctor` lists it");
        }
    }

    /// After the cutover: the old copy and role go from the source server.
    pub(crate) async fn retire_source(&self, source: &DbServer, db: &DbName) {
        if let Err(e) = self.provisioner.drop_tenant_database(source, db).await {
            tracing::warn!(error = %e, server = %source.name, "the tenant moved, but its old database could not be dropped; `doctor` lists it");
        }
    }

    /// Finishes a move a crash interrupted: after the cutover it drops the
    /// old copy; before it, it undoes the move.
    pub(crate) async fn finish_move_for_reconciler(
        &self,
        record: &TenantRecord,
        op: &crate::catalog::Operation,
    ) -> Result<(), TenantsError> {
        let server = |key: &str| {
            op.params
                .get(key)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<Uuid>().ok())
                .ok_or(TenantsError::Inconsistent("move without its servers"))
        };
        let (source_id, target_id) = (server("source")?, server("target")?);
        let get = |id| async move {
            self.catalog
                .get_server(id)
                .await?
                .ok_or(TenantsError::Inconsistent("move to an unknown server"))
        };
        let (source, target) = (get(source_id).await?, get(target_id).await?);
        let db = DbName::for_tenant(record.id);
        if record.db_server_id == Some(target_id) {
            self.retire_source(&source, &db).await;
            self.catalog
                .finish_operation(op.id, record.id, true, None, &TenantChange::default())
                .await?;
        } else {
            self.undo_move(&source, &target, &db).await;
            self.catalog
                .finish_operation(
                    op.id,
                    record.id,
                    false,
                    Some("interrupted before the cutover; undone"),
                    &TenantChange::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// Moves every tenant off `server` (marked draining first, so nothing new
    /// lands there), each to the server placement picks for its tier.
    /// `progress(done, total)` is called after each tenant.
    pub async fn drain_server(
        &self,
        server: Uuid,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<DrainItem>, TenantsError> {
        let patch = crate::catalog::ServerPatch {
            state: Some(ServerState::Draining),
            ..Default::default()
        };
        self.catalog
            .update_server(server, &patch)
            .await?
            .ok_or(TenantsError::ServerNotFound)?;
        let tenants = self.catalog.root_tenants_on(server).await?;
        let total = tenants.len();
        let mut items = Vec::with_capacity(total);
        for (done, record) in tenants.into_iter().enumerate() {
            let outcome = match self.catalog.pick_server(record.tier).await? {
                None => Err(TenantsError::NoServer),
                Some(to) => self.move_tenant(record.id, to.id).await.map(|_| to.name),
            };
            items.push(DrainItem {
                tenant_id: record.id,
                slug: record.slug.clone(),
                to: outcome.as_ref().ok().cloned(),
                error: outcome.err().map(|e| e.to_string()),
            });
            progress(done + 1, total);
        }
        Ok(items)
    }
}
