//! Restoring a verified backup archive: into the same tenant (which must be
//! suspended or deleted), swapping its database for the restored copy, or
//! as a new tenant (a clone) with a fresh id, database and role. Nothing is
//! touched until the archive has been verified; a failure before the swap
//! (or, for a clone, before it is recorded active) removes what was made.

use uuid::Uuid;

use super::clone_ids::clone_slug;
use super::{role_purpose, settings_purpose, TenantView, Tenants, TenantsError};
use crate::backup::{TenantSnapshot, VerifiedArchive};
use crate::catalog::{
    DbServer, InPlaceRestore, NewTenant, OpKind, RestoredSubtenant, TenantChange, TenantRecord,
};
use crate::crypto::random_hex_secret;
use crate::domain::{DbName, Slug, TenantId, TenantStatus};

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
}

impl Tenants {
    pub async fn restore_backup(
        &self,
        archive: &VerifiedArchive,
        target: RestoreTarget,
    ) -> Result<RestoreReport, TenantsError> {
        let started = std::time::Instant::now();
        let result = match target {
            RestoreTarget::SameTenant => self.restore_in_place(archive).await,
            RestoreTarget::AsNew { slug } => self.restore_as_new(archive, slug).await,
        };
        crate::telemetry::metrics::record_operation("restore", started, result.is_ok());
        result
    }

    #[tracing::instrument(skip_all, fields(tenant.id = %archive.manifest.tenant_id))]
    async fn restore_in_place(
        &self,
        archive: &VerifiedArchive,
    ) -> Result<RestoreReport, TenantsError> {
        let id = archive.manifest.tenant_id;
        let record = match self.catalog.get_tenant(id).await? {
            Some(r) if r.purged_at.is_none() => r,
            _ => return Err(TenantsError::RestoreNeedsNew),
        };
        if !matches!(
            record.status,
            TenantStatus::Suspended | TenantStatus::Deleted
        ) {
            return Err(TenantsError::InvalidState {
                action: "restore a backup into (suspend or delete it first) a tenant that is",
                status: record.status,
            });
        }
        let server = self.server_of(&record).await?;
        let op = Uuid::now_v7();
        let _in_flight = self.try_track(op);
        self.catalog
            .begin_operation_with(
                op,
                id,
                OpKind::RestoreBackup,
                &serde_json::json!({ "mode": "same_tenant", "server": server.id }),
            )
            .await?;
        let db = DbName::for_tenant(id);
        let staging = db.staging();
        let version = match self.restore_into(&server, &staging, archive).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "restore failed; the tenant's database is untouched");
                let _ = self.provisioner.drop_database(&server, &staging).await;
                self.catalog.fail_operation(op, id, &e.to_string()).await?;
                return Err(e);
            }
        };
        // The swap: the old database steps aside, the restored one takes its name.
        let retired = db.retired();
        self.provisioner.drop_database(&server, &retired).await?;
        self.provisioner
            .rename_database(&server, db.as_str(), &retired)
            .await?;
        self.provisioner
            .rename_database(&server, &staging, db.as_str())
            .await?;
        self.provisioner.drop_database(&server, &retired).await?;
        let doc = &archive.document;
        let restore = InPlaceRestore {
            root: id,
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
                .collect::<Result<_, TenantsError>>()?,
            domains: doc.domains.clone(),
        };
        let skipped = self.catalog.finish_in_place_restore(op, &restore).await?;
        let record = self.record(id).await?;
        Ok(RestoreReport {
            tenant: self.view(&record).await?,
            from_schema_version: archive.manifest.schema_version,
            schema_version: version,
            domains_skipped: skipped,
        })
    }

    #[tracing::instrument(skip_all, fields(from = %archive.manifest.tenant_id))]
    async fn restore_as_new(
        &self,
        archive: &VerifiedArchive,
        slug: Slug,
    ) -> Result<RestoreReport, TenantsError> {
        let doc = &archive.document;
        let server = self
            .catalog
            .pick_server(doc.tenant.tier)
            .await?
            .ok_or(TenantsError::NoServer)?;
        let id = TenantId::generate();
        let db = DbName::for_tenant(id);
        let password = random_hex_secret();
        let new = NewTenant {
            id,
            slug: slug.as_str().to_string(),
            name: doc.tenant.name.clone(),
            parent_id: None,
            tier: doc.tenant.tier,
            status: TenantStatus::Provisioning,
            db_server_id: Some(server.id),
            db_name: Some(db.as_str().to_string()),
            db_password_enc: Some(self.master_key.seal(
                &role_purpose(id),
                secrecy::ExposeSecret::expose_secret(&password).as_bytes(),
            )),
            schema_version: 0,
            settings: doc.tenant.settings.clone(),
            settings_secrets_enc: self.reseal(&doc.tenant, id)?,
        };
        // Subtenants get fresh ids (and slugs under the new tenant's).
        let mut ids = vec![(doc.tenant.id, id)];
        let mut subtenants = Vec::new();
        for s in &doc.subtenants {
            let sub_id = TenantId::generate();
            ids.push((s.id, sub_id));
            subtenants.push(NewTenant {
                id: sub_id,
                slug: clone_slug(&slug, &s.slug, sub_id),
                name: s.name.clone(),
                parent_id: Some(id),
                tier: doc.tenant.tier,
                status: if s.status == TenantStatus::Active {
                    TenantStatus::Active
                } else {
                    TenantStatus::Suspended
                },
                db_server_id: None,
                db_name: None,
                db_password_enc: None,
                schema_version: 0,
                settings: s.settings.clone(),
                settings_secrets_enc: self.reseal(s, sub_id)?,
            });
        }
        let op = Uuid::now_v7();
        let _in_flight = self.try_track(op);
        let record = self
            .catalog
            .insert_tenant(&new, op, OpKind::RestoreBackup, false)
            .await?;
        let made = async {
            self.provisioner
                .ensure_tenant_role(&server, &db, &password)
                .await?;
            let version = self.restore_into(&server, db.as_str(), archive).await?;
            self.rewrite_ids(&server, &db, &ids).await?;
            self.provisioner
                .grant_tenant_connect(&server, db.as_str(), &db)
                .await?;
            Ok::<_, TenantsError>(version)
        }
        .await;
        let version = match made {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(tenant.id = %id, error = %e, "restore as a new tenant failed; undoing it");
                self.undo_clone(&record, &server, op, &e.to_string()).await;
                return Err(e);
            }
        };
        if let Err(e) = self
            .catalog
            .finish_restored_clone(op, id, &subtenants, version)
            .await
        {
            self.undo_clone(&record, &server, op, &e.to_string()).await;
            return Err(e.into());
        }
        let record = self.record(id).await?;
        Ok(RestoreReport {
            tenant: self.view(&record).await?,
            from_schema_version: archive.manifest.schema_version,
            schema_version: version,
            domains_skipped: doc.domains.clone(),
        })
    }

    /// Restores the archive's dump into a new blank `database` on `server`
    /// and migrates it to the newest schema; returns that version.
    async fn restore_into(
        &self,
        server: &DbServer,
        database: &str,
        archive: &VerifiedArchive,
    ) -> Result<i32, TenantsError> {
        if self.provisioner.template_version(server.id).is_none() {
            // The tenant group role the dump's grants name lives there.
            self.provisioner.prepare_server(server).await?;
        }
        self.provisioner.drop_database(server, database).await?;
        self.provisioner
            .create_blank_database(server, database)
            .await?;
        let config = self.provisioner.admin_config(server, database)?;
        self.dump.restore(&config, &archive.dump).await?;
        // An archive from an older schema comes up to date here.
        let outcome = self
            .provisioner
            .migrations()
            .migrate_database(&config, None)
            .await?;
        Ok(outcome.to_version)
    }

    async fn undo_clone(&self, record: &TenantRecord, server: &DbServer, op: Uuid, error: &str) {
        let db = DbName::for_tenant(record.id);
        if let Err(e) = self.provisioner.drop_tenant_database(server, &db).await {
            tracing::error!(tenant.id = %record.id, error = %e, "could not drop a half-restored clone; the reconciler retries");
            return;
        }
        // Kept for the record, but purged: the slug is free for another try.
        let change = TenantChange {
            status: Some(TenantStatus::Failed),
            error: Some(error.chars().take(500).collect()),
            purged: true,
            ..TenantChange::default()
        };
        if let Err(e) = self
            .catalog
            .finish_operation(op, record.id, false, Some(error), &change)
            .await
        {
            tracing::error!(tenant.id = %record.id, error = %e, "could not record a failed restore");
        }
    }

    /// A snapshot's sealed secrets, sealed again for `new_id`.
    fn reseal(
        &self,
        snap: &TenantSnapshot,
        new_id: TenantId,
    ) -> Result<Option<Vec<u8>>, TenantsError> {
        let Some(sealed) = sealed(snap)? else {
            return Ok(None);
        };
        let plain = self.master_key.open(&settings_purpose(snap.id), &sealed)?;
        Ok(Some(
            self.master_key.seal(&settings_purpose(new_id), &plain),
        ))
    }

    /// Finishes a restore a crash interrupted. A clone is undone; an
    /// in-place restore whose swap was cut short gets its database back
    /// under the tenant's name, and the staging copy goes.
    pub(crate) async fn finish_restore_for_reconciler(
        &self,
        record: &TenantRecord,
        op: &crate::catalog::Operation,
    ) -> Result<(), TenantsError> {
        let server = self.server_of(record).await?;
        let db = DbName::for_tenant(record.id);
        if op.params.get("mode").and_then(|m| m.as_str()) == Some("same_tenant") {
            let p = &self.provisioner;
            if !p.database_exists(&server, db.as_str()).await? {
                // Cut between the two renames: whichever copy is whole comes back.
                let back = if p.database_exists(&server, &db.staging()).await? {
                    db.staging()
                } else {
                    db.retired()
                };
                p.rename_database(&server, &back, db.as_str()).await?;
            }
            p.drop_database(&server, &db.staging()).await?;
            p.drop_database(&server, &db.retired()).await?;
            self.catalog
                .finish_operation(
                    op.id,
                    record.id,
                    false,
                    Some("interrupted; the tenant keeps the database it has now; run the restore again"),
                    &TenantChange::default(),
                )
                .await?;
        } else {
            self.undo_clone(record, &server, op.id, "interrupted; undone")
                .await;
        }
        Ok(())
    }
}

/// The snapshot's sealed secrets as bytes.
fn sealed(snap: &TenantSnapshot) -> Result<Option<Vec<u8>>, TenantsError> {
    snap.settings_secrets_enc
        .as_deref()
        .map(|h| {
            hex::decode(h).map_err(|_| TenantsError::Inconsistent("sealed secrets are not hex"))
        })
        .transpose()
}
