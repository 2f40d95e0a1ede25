//! Restoring a verified backup archive: into the same tenant (which must be
//! suspended or deleted), swapping its database for the restored copy, or
//! as a new tenant (a clone) with a fresh id, database and role. Nothing is
//! touched until the archive has been verified; a failure before the swap
//! (or, for a clone, before it is recorded active) removes what was made.
//! An in-place restore never brings back a subtenant purged since the
//! backup: its record stays purged and its rows leave the staged copy.

use super::BackupsError;
use crate::backup::{TenantSnapshot, VerifiedArchive};
use crate::catalog::{DbServer, InPlaceRestore, OpKind, RestoredSubtenant, TenantRecord};
use crate::domain::{DbName, Slug, TenantId, TenantStatus};
use crate::error_code::ErrorCode;
use crate::operations::Lease;
use crate::tenants::{TenantView, Tenants};

/// Where a restore goes.
#[derive(Debug, Clone)]
pub enum RestoreTarget {
    /// Back into the tenant the archive came from.
    SameTenant,
    /// A new tenant with this slug.
    AsNew { slug: Slug },
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub tenant: TenantView,
    pub from_schema_version: i32,
    pub schema_version: i32,
    /// Custom domains not restored because another tenant holds them now.
    pub domains_skipped: Vec<String>,
    /// A restore as a new tenant gives each subtenant a slug under the new
    /// tenant's (`<new>-<old>`), since the old slugs are still taken: the
    /// slug each had in the archive, and the one it has now.
    pub subtenants_renamed: Vec<RenamedSubtenant>,
}

/// A subtenant restored under another slug.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenamedSubtenant {
    pub from: String,
    pub to: String,
}

impl Tenants {
    pub async fn restore_backup(
        &self,
        archive: &VerifiedArchive,
        target: RestoreTarget,
    ) -> Result<RestoreReport, BackupsError> {
        let started = std::time::Instant::now();
        let result = match (self.check_schema(archive.manifest.schema_version), target) {
            (Err(too_new), _) => Err(too_new),
            (Ok(()), RestoreTarget::SameTenant) => self.restore_in_place(archive).await,
            (Ok(()), RestoreTarget::AsNew { slug }) => self.restore_as_new(archive, slug).await,
        };
        crate::telemetry::metrics::record_operation("restore", started, result.is_ok());
        result
    }

    /// Refuses a backup at a schema version above the newest this build's
    /// tenant migrations know, before anything is touched.
    pub(in crate::tenants) fn check_schema(&self, version: i32) -> Result<(), BackupsError> {
        let newest = self.provisioner.migrations().latest_version();
        if version > newest {
            return Err(BackupsError::ArchiveTooNew {
                archive: version,
                newest,
            });
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant.id = %archive.manifest.tenant_id))]
    async fn restore_in_place(
        &self,
        archive: &VerifiedArchive,
    ) -> Result<RestoreReport, BackupsError> {
        let (record, lease) = self
            .begin_restore_in_place(
                archive.manifest.tenant_id,
                serde_json::json!({ "mode": "same_tenant" }),
            )
            .await?;
        lease
            .guard(self.run_restore_in_place(&record, archive, &lease))
            .await
    }

    /// Begins an in-place restore: the tenant, read under its lock, must be
    /// suspended or deleted (and not purged).
    pub(in crate::tenants) async fn begin_restore_in_place(
        &self,
        id: TenantId,
        params: serde_json::Value,
    ) -> Result<(TenantRecord, Lease), BackupsError> {
        let (record, lease) = match self.ops.begin(id, OpKind::RestoreBackup, &params).await {
            Ok(begun) => begun,
            Err(crate::catalog::CatalogError::TenantMissing) => {
                return Err(BackupsError::RestoreNeedsNew)
            }
            Err(e) => return Err(e.into()),
        };
        let refusal = if record.purged_at.is_some() {
            Some(BackupsError::RestoreNeedsNew)
        } else if !matches!(
            record.status,
            TenantStatus::Suspended | TenantStatus::Deleted
        ) {
            Some(BackupsError::InvalidState {
                action: "restore a backup into (suspend or delete it first) a tenant that is",
                status: record.status,
            })
        } else {
            None
        };
        if let Some(refused) = refusal {
            lease.discard().await?;
            return Err(refused);
        }
        Ok((record, lease))
    }

    pub(in crate::tenants) async fn run_restore_in_place(
        &self,
        record: &TenantRecord,
        archive: &VerifiedArchive,
        lease: &Lease,
    ) -> Result<RestoreReport, BackupsError> {
        let id = record.id;
        let server = self.server_of(record).await?;
        let db = DbName::for_tenant(id);
        let staging = db.staging();
        let version = match self.restore_into(&server, &staging, archive, lease).await {
            Ok(v) => v,
            Err(e @ BackupsError::Abandoned(_)) => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "restore failed; the tenant's database is untouched");
                let _ = self.drop_staging(id, &server, &db, lease).await;
                lease.fail(id, e.code(), &e.to_string()).await?;
                return Err(e);
            }
        };
        crate::failpoint!("restore.after_stage");
        // A subtenant purged since the backup stays purged: its rows leave
        // the staged copy before it goes live, as the purge removed them.
        // The root's lock, held here, keeps a purge from running meanwhile.
        let in_archive: Vec<TenantId> = archive.document.subtenants.iter().map(|s| s.id).collect();
        for purged in self.catalog.purged_subtenants(id, &in_archive).await? {
            let deleted = self
                .provisioner
                .delete_subtenant_rows(&server, &staging, purged.as_uuid())
                .await;
            if let Err(e) = deleted {
                tracing::error!(error = %e, "a purged subtenant's rows could not leave the restored copy");
                let _ = self.drop_staging(id, &server, &db, lease).await;
                let e = BackupsError::from(e);
                lease.fail(id, e.code(), &e.to_string()).await?;
                return Err(e);
            }
        }
        let restore = in_place_records(archive, version)?;
        // From here the restore is finished forward, by whoever takes it on:
        // the staged copy is whole and verified, and the records it brings
        // are in the operation's parameters.
        lease
            .step(
                "swap",
                Some(&serde_json::json!({
                    "mode": "same_tenant",
                    "server": server.id,
                    "restore": restore,
                })),
            )
            .await?;
        crate::failpoint!("restore.before_swap");
        self.swap_in_staging(id, &server, &db, lease).await?;
        crate::failpoint!("restore.after_swap");
        let skipped = self
            .catalog
            .finish_in_place_restore(lease.fence(), &restore)
            .await?;
        let record = self.record(id).await?;
        Ok(RestoreReport {
            tenant: self.view(&record).await?,
            from_schema_version: archive.manifest.schema_version,
            schema_version: version,
            domains_skipped: skipped,
            subtenants_renamed: Vec::new(),
        })
    }

    /// The swap: the staged copy takes the tenant's name and the old
    /// database goes, under the operation's row lock. Whichever step a crash
    /// cut, running it again completes it.
    async fn swap_in_staging(
        &self,
        id: TenantId,
        server: &DbServer,
        db: &DbName,
        lease: &Lease,
    ) -> Result<(), BackupsError> {
        let p = &self.provisioner;
        let (staging, retired) = (db.staging(), db.retired());
        let held = self.hold_on(lease, id, server.id).await?;
        if p.database_exists(server, &staging).await? {
            if p.database_exists(server, db.as_str()).await? {
                p.drop_database(server, &retired).await?;
                p.rename_database(server, db.as_str(), &retired).await?;
            }
            crate::failpoint!("restore.mid_swap");
            p.rename_database(server, &staging, db.as_str()).await?;
        }
        p.drop_database(server, &retired).await?;
        held.release().await;
        Ok(())
    }

    /// Drops a restore's staged copy, while the catalog still places the
    /// tenant on `server`.
    async fn drop_staging(
        &self,
        id: TenantId,
        server: &DbServer,
        db: &DbName,
        lease: &Lease,
    ) -> Result<(), BackupsError> {
        let held = self.hold_on(lease, id, server.id).await?;
        self.provisioner
            .drop_database(server, &db.staging())
            .await?;
        held.release().await;
        Ok(())
    }

    /// The operation's row lock, once the tenant is seen placed on `server`.
    pub(super) async fn hold_on(
        &self,
        lease: &Lease,
        id: TenantId,
        server: uuid::Uuid,
    ) -> Result<crate::operations::Held, BackupsError> {
        let held = lease.hold().await?;
        let now = held.tenant(id).await?.ok_or(BackupsError::NotFound)?;
        if now.db_server_id != Some(server) || now.purged_at.is_some() {
            return Err(BackupsError::Inconsistent(
                "the tenant is not placed where its restore assumed",
            ));
        }
        Ok(held)
    }

    /// Restores the archive's dump into a new blank `database` on `server`
    /// and migrates it to the newest schema; returns that version.
    pub(super) async fn restore_into(
        &self,
        server: &DbServer,
        database: &str,
        archive: &VerifiedArchive,
        lease: &Lease,
    ) -> Result<i32, BackupsError> {
        if self.provisioner.template_version(server.id).is_none() {
            // The tenant group role the dump's grants name lives there.
            self.provisioner.prepare_server(server).await?;
        }
        // A leftover of an earlier attempt goes, only while this operation
        // still holds the tenant.
        let held = lease.hold().await?;
        self.provisioner.drop_database(server, database).await?;
        held.release().await;
        self.provisioner
            .create_blank_database(server, database)
            .await?;
        let config = self.provisioner.admin_config(server, database)?;
        self.dump
            .restore(&config, &archive.dump)
            .await
            .map_err(BackupsError::Restore)?;
        // An archive from an older schema comes up to date here.
        let outcome = self
            .provisioner
            .migrations()
            .migrate_database(&config, None)
            .await?;
        Ok(outcome.to_version)
    }

    /// Finishes a restore another process left. In place: once the swap
    /// step was recorded, it is completed forward (the staged copy is whole
    /// and the records are in the parameters); before that, the staged copy
    /// goes and the tenant keeps its database. A clone is undone.
    pub(crate) async fn finish_restore(
        &self,
        record: &TenantRecord,
        op: &crate::catalog::Operation,
        lease: &Lease,
    ) -> Result<(), BackupsError> {
        let server = self.server_of(record).await?;
        let db = DbName::for_tenant(record.id);
        if op.params.get("mode").and_then(|m| m.as_str()) != Some("same_tenant") {
            self.undo_clone(
                record,
                &server,
                lease,
                ErrorCode::Interrupted,
                "interrupted; undone",
            )
            .await;
            return Ok(());
        }
        if op.step.as_deref() == Some("swap") {
            let restore: InPlaceRestore = op
                .params
                .get("restore")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok())
                .ok_or(BackupsError::Inconsistent(
                    "a restore's swap without its records",
                ))?;
            self.swap_in_staging(record.id, &server, &db, lease).await?;
            self.catalog
                .finish_in_place_restore(lease.fence(), &restore)
                .await?;
            return Ok(());
        }
        self.drop_staging(record.id, &server, &db, lease).await?;
        lease
            .fail(
                record.id,
                ErrorCode::Interrupted,
                "interrupted before the swap; the tenant keeps its database; run the restore again",
            )
            .await?;
        Ok(())
    }
}

/// The catalog records an in-place restore brings back.
fn in_place_records(
    archive: &VerifiedArchive,
    version: i32,
) -> Result<InPlaceRestore, BackupsError> {
    let doc = &archive.document;
    Ok(InPlaceRestore {
        root: doc.tenant.id,
        settings: doc.tenant.settings.clone(),
        settings_secrets_enc: sealed(&doc.tenant)?,
        schema_version: version,
        subtenants: doc
            .subtenants
            .iter()
            .map(|s| {
                Ok(RestoredSubtenant {
                    id: s.id,
                    slug: s.slug.clone(),
                    name: s.name.clone(),
                    status: s.status.as_str().to_string(),
                    settings: s.settings.clone(),
                    settings_secrets_enc: sealed(s)?,
                })
            })
            .collect::<Result<_, BackupsError>>()?,
        domains: doc.domains.clone(),
    })
}

/// The snapshot's sealed secrets as bytes.
pub(super) fn sealed(snap: &TenantSnapshot) -> Result<Option<Vec<u8>>, BackupsError> {
    snap.settings_secrets_enc
        .as_deref()
        .map(|h| {
            hex::decode(h).map_err(|_| BackupsError::Inconsistent("sealed secrets are not hex"))
        })
        .transpose()
}
