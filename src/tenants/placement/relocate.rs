//! Moving a root tenant's database to another server: copy it with dump and
//! restore while its writes are paused, verify the copy table by table,
//! switch the catalog pointer (every replica's router follows the change
//! notice), then drop the old database. Until the switch, a failure resumes
//! the tenant where it was and removes the partial copy.
//!
//! The target must be `active` when the move begins and again when the
//! switch commits (checked in the switch's own transaction, under the
//! target row's share lock). A target that began draining during the copy
//! fails the move with `ServerNotActive`, undone like any failure before
//! the cutover. It is not re-placed on another server: the operator (or
//! the drain) chose this target, and a copy to another one is a new move
//! that the caller may start; failing leaves the tenant exactly where it
//! was, which a drain of either server then handles.
//!
//! Rules: a tenant lives on exactly one server: its catalog pointer
//! changes only in the transaction that finishes the move, after the copy
//! was verified table by table against the paused source. Only a move pauses
//! a tenant's writes, and only on its source.

use uuid::Uuid;

use super::{PlacementError, Started};
use crate::catalog::{CatalogError, DbServer, OpKind, ServerState, TenantChange, TenantRecord};
use crate::domain::{DbName, TenantId, TenantStatus};
use crate::dump::table_checksums;
use crate::error_code::ErrorCode;
use crate::operations::Lease;
use crate::tenants::{TenantView, Tenants};

impl Tenants {
    /// Moves a root tenant's database to `target`; returns the tenant as placed now.
    #[tracing::instrument(skip_all, fields(tenant.id = %id, target = %target))]
    pub async fn move_tenant(
        &self,
        id: TenantId,
        target: Uuid,
    ) -> Result<TenantView, PlacementError> {
        match self.start_move(id, target).await?.run {
            Some(run) => run.await,
            None => Err(PlacementError::Busy),
        }
    }

    /// Begins a move: the tenant and the servers are checked under the
    /// tenant's lock; the copy runs when `run` is awaited.
    pub async fn start_move(
        &self,
        id: TenantId,
        target: Uuid,
    ) -> Result<Started<TenantView>, PlacementError> {
        let (record, lease) = self
            .ops
            .begin(id, OpKind::Move, &serde_json::json!({ "target": target }))
            .await?;
        let checked = async {
            if record.parent_id.is_some() {
                return Err(PlacementError::InvalidState {
                    action: "move a subtenant (it lives in its root's database);",
                    status: record.status,
                });
            }
            if record.purged_at.is_some() {
                return Err(PlacementError::NotFound);
            }
            if !matches!(
                record.status,
                TenantStatus::Active | TenantStatus::Suspended | TenantStatus::Deleted
            ) {
                return Err(PlacementError::InvalidState {
                    action: "move",
                    status: record.status,
                });
            }
            let source = self.server_of(&record).await?;
            let target = self
                .catalog
                .get_server(target)
                .await?
                .ok_or(PlacementError::ServerNotFound)?;
            if target.id == source.id {
                return Err(PlacementError::SameServer);
            }
            if target.state != ServerState::Active {
                return Err(PlacementError::ServerNotActive);
            }
            Ok((source, target))
        }
        .await;
        let (source, target) = match checked {
            Ok(servers) => servers,
            Err(e) => {
                lease.discard().await?;
                return Err(e);
            }
        };
        let tenants = self.clone();
        let op = lease.op();
        let run = async move {
            let started = std::time::Instant::now();
            let result = lease
                .guard(tenants.run_move(&record, &source, &target, &lease))
                .await;
            crate::telemetry::metrics::record_operation("move", started, result.is_ok());
            result
        };
        Ok(Started::new(op, run))
    }

    async fn run_move(
        &self,
        record: &TenantRecord,
        source: &DbServer,
        target: &DbServer,
        lease: &Lease,
    ) -> Result<TenantView, PlacementError> {
        let id = record.id;
        lease
            .step(
                "copy",
                Some(&serde_json::json!({ "source": source.id, "target": target.id })),
            )
            .await?;
        tracing::info!(from = %source.name, to = %target.name, "moving tenant");
        crate::failpoint!("move.before_copy");
        let db = DbName::for_tenant(id);
        if let Err(e) = self.copy_to(record, source, target, &db, lease).await {
            return self.abandon_move(id, source, target, &db, lease, e).await;
        }
        crate::failpoint!("move.after_copy");
        // The cutover: from here on the tenant lives on `target`, unless the
        // target stopped taking tenants since the move began (a drain).
        match self
            .catalog
            .switch_placement(lease.fence(), id, source.id, target.id)
            .await
        {
            Ok(_) => {}
            Err(CatalogError::ServerNotActive) => {
                let e = PlacementError::ServerNotActive;
                return self.abandon_move(id, source, target, &db, lease, e).await;
            }
            Err(e) => return Err(e.into()),
        }
        crate::failpoint!("move.after_switch");
        self.retire_source(id, source, target, &db, lease).await?;
        crate::failpoint!("move.after_retire");
        let moved = lease
            .finish(id, None, &TenantChange::default())
            .await?
            .ok_or(PlacementError::NotFound)?;
        Ok(self.view(&moved).await?)
    }

    /// A move that failed before its cutover (`e`): the tenant stays where
    /// it was, its writes resume and the copy goes, as `undo_move` does;
    /// the operation fails with `e`. An abandoned move is left to whoever
    /// took it over.
    async fn abandon_move(
        &self,
        id: TenantId,
        source: &DbServer,
        target: &DbServer,
        db: &DbName,
        lease: &Lease,
        e: PlacementError,
    ) -> Result<TenantView, PlacementError> {
        if matches!(e, PlacementError::Abandoned(_)) {
            return Err(e);
        }
        tracing::error!(error = %e, "move failed before the cutover; the tenant stays where it was");
        match self.undo_move(id, source, target, db, lease).await {
            Ok(()) => lease.fail(id, e.code(), &e.to_string()).await?,
            Err(undo) => {
                // Its writes may still be paused: the reconciler keeps
                // trying to undo the move until they resume.
                tracing::error!(error = %undo, "could not undo the move; the reconciler retries");
                lease
                    .release("the move failed and could not be undone yet")
                    .await;
            }
        }
        Err(e)
    }

    /// Everything before the cutover: a verified copy on `target`, with the
    /// source paused.
    async fn copy_to(
        &self,
        record: &TenantRecord,
        source: &DbServer,
        target: &DbServer,
        db: &DbName,
        lease: &Lease,
    ) -> Result<(), PlacementError> {
        let password = self.role_password(record)?;
        if self.provisioner.template_version(target.id).is_none() {
            // The tenant group role the dump's grants name lives there.
            self.provisioner.prepare_server(target).await?;
        }
        self.provisioner
            .ensure_tenant_role(target, db, &password)
            .await?;
        // A leftover copy on the target goes, but only while the catalog
        // still places the tenant on its source (so it is not the live one).
        let held = self.hold_placed_on(lease, record.id, source.id).await?;
        self.provisioner.drop_database(target, db.as_str()).await?;
        held.release().await;
        self.provisioner
            .create_blank_database(target, db.as_str())
            .await?;
        // Only this tenant's writes stop; its reads go on.
        self.provisioner.set_writes_paused(source, db, true).await?;
        let source_config = self.provisioner.admin_config(source, db.as_str())?;
        let target_config = self.provisioner.admin_config(target, db.as_str())?;
        let file = tempfile::Builder::new()
            .prefix("tenant-plane-move-")
            .tempfile_in(self.scratch_dir().map_err(PlacementError::scratch)?)
            .map_err(|e| PlacementError::copy("creating the dump file", e))?;
        self.dump
            .dump_transient(&source_config, file.path())
            .await?;
        // Progress: the copy's size, then its three steps (dump, restore, verify).
        let copied = tokio::fs::metadata(file.path()).await.map(|m| m.len()).ok();
        lease
            .progress(Some(1), Some(3), copied.and_then(|b| i64::try_from(b).ok()))
            .await;
        self.dump.restore(&target_config, file.path()).await?;
        lease.progress(Some(2), None, None).await;
        let (before, after) = (
            table_checksums(&source_config).await?,
            table_checksums(&target_config).await?,
        );
        if before != after {
            return Err(PlacementError::Copy {
                step: "the copy's table checksums differ from the source's",
                source: None,
            });
        }
        lease.progress(Some(3), None, None).await;
        if record.status == TenantStatus::Active {
            self.provisioner
                .grant_tenant_connect(target, db.as_str(), db)
                .await?;
        }
        Ok(())
    }

    /// The operation's row lock, once the catalog is seen to place the
    /// tenant on `server` under it.
    async fn hold_placed_on(
        &self,
        lease: &Lease,
        tenant: TenantId,
        server: Uuid,
    ) -> Result<crate::operations::Held, PlacementError> {
        let held = lease.hold().await?;
        let now = held.tenant(tenant).await?.ok_or(PlacementError::NotFound)?;
        if now.db_server_id != Some(server) {
            return Err(PlacementError::Inconsistent(
                "the tenant is not placed where its move assumed",
            ));
        }
        Ok(held)
    }

    /// Undoes a move that failed before its cutover, while the catalog
    /// still places the tenant on its source: the source takes writes again
    /// and the partial copy goes.
    pub(crate) async fn undo_move(
        &self,
        tenant: TenantId,
        source: &DbServer,
        target: &DbServer,
        db: &DbName,
        lease: &Lease,
    ) -> Result<(), PlacementError> {
        let held = self.hold_placed_on(lease, tenant, source.id).await?;
        self.provisioner
            .set_writes_paused(source, db, false)
            .await?;
        if let Err(e) = self.provisioner.drop_tenant_database(target, db).await {
            tracing::warn!(error = %e, server = %target.name, "could not drop a partial copy; `doctor` lists it");
        }
        held.release().await;
        Ok(())
    }

    /// After the cutover: the old copy and role go from the source server,
    /// while the catalog places the tenant on the target.
    async fn retire_source(
        &self,
        tenant: TenantId,
        source: &DbServer,
        target: &DbServer,
        db: &DbName,
        lease: &Lease,
    ) -> Result<(), PlacementError> {
        let held = self.hold_placed_on(lease, tenant, target.id).await?;
        if let Err(e) = self.provisioner.drop_tenant_database(source, db).await {
            tracing::warn!(error = %e, server = %source.name, "the tenant moved, but its old database could not be dropped; `doctor` lists it");
        }
        held.release().await;
        Ok(())
    }

    /// Finishes a move another process left: after the cutover it drops the
    /// old copy; before it, it undoes the move (resuming the source's
    /// writes). If that fails, the operation is released and retried.
    pub(crate) async fn finish_move(
        &self,
        record: &TenantRecord,
        op: &crate::catalog::Operation,
        lease: &Lease,
    ) -> Result<(), PlacementError> {
        let server = |key: &str| {
            op.params
                .get(key)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<Uuid>().ok())
        };
        let Some(target_id) = server("target") else {
            return Err(PlacementError::Inconsistent("move without its target"));
        };
        let Some(source_id) = server("source") else {
            // It never got to copy anything.
            lease
                .fail(
                    record.id,
                    ErrorCode::Interrupted,
                    "interrupted before the copy began",
                )
                .await?;
            return Ok(());
        };
        let get = |id| async move {
            self.catalog
                .get_server(id)
                .await?
                .ok_or(PlacementError::Inconsistent("move to an unknown server"))
        };
        let (source, target) = (get(source_id).await?, get(target_id).await?);
        let db = DbName::for_tenant(record.id);
        if record.db_server_id == Some(target_id) {
            self.retire_source(record.id, &source, &target, &db, lease)
                .await?;
            lease
                .finish(record.id, None, &TenantChange::default())
                .await?;
        } else if let Err(e) = self
            .undo_move(record.id, &source, &target, &db, lease)
            .await
        {
            lease.release("the move could not be undone yet").await;
            return Err(e);
        } else {
            lease
                .fail(
                    record.id,
                    ErrorCode::Interrupted,
                    "interrupted before the cutover; undone",
                )
                .await?;
        }
        Ok(())
    }
}
