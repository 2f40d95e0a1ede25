//! Restoring a verified backup archive as a new tenant (a clone) with fresh
//! ids, database and role; its subtenants get fresh ids too. A failure
//! before the clone is recorded active removes what was made.

use super::clone_ids::clone_slug;
use super::{BackupsError, RenamedSubtenant, RestoreReport};
use crate::backup::{TenantSnapshot, VerifiedArchive};
use crate::catalog::{DbServer, Failure, NewTenant, OpKind, TenantChange, TenantRecord};
use crate::crypto::random_hex_secret;
use crate::domain::{DbName, Slug, TenantId, TenantStatus};
use crate::error_code::ErrorCode;
use crate::operations::Lease;
use crate::tenants::{role_purpose, settings_purpose, Tenants};

impl Tenants {
    #[tracing::instrument(skip_all, fields(from = %archive.manifest.tenant_id))]
    pub(super) async fn restore_as_new(
        &self,
        archive: &VerifiedArchive,
        slug: Slug,
    ) -> Result<RestoreReport, BackupsError> {
        let doc = &archive.document;
        let id = TenantId::generate();
        let db = DbName::for_tenant(id);
        let password = random_hex_secret();
        let mut new = NewTenant {
            id,
            slug: slug.clone(),
            name: doc.tenant.name.clone(),
            parent_id: None,
            tier: doc.tenant.tier,
            status: TenantStatus::Provisioning,
            // Placed below, where the server is checked as it is recorded.
            db_server_id: None,
            db_name: Some(db.clone()),
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
        let (server, record, lease) = self.place_root(&mut new, OpKind::RestoreBackup).await?;
        lease
            .guard(self.run_restore_as_new(&record, &server, archive, ids, subtenants, &lease))
            .await
    }

    async fn run_restore_as_new(
        &self,
        record: &TenantRecord,
        server: &DbServer,
        archive: &VerifiedArchive,
        ids: Vec<(TenantId, TenantId)>,
        subtenants: Vec<NewTenant>,
        lease: &Lease,
    ) -> Result<RestoreReport, BackupsError> {
        let (id, server) = (record.id, server.clone());
        let db = DbName::for_tenant(id);
        let password = self.role_password(record)?;
        let doc = &archive.document;
        let made = async {
            self.provisioner
                .ensure_tenant_role(&server, &db, &password)
                .await?;
            let version = self
                .restore_into(&server, db.as_str(), archive, lease)
                .await?;
            self.rewrite_ids(&server, &db, &ids).await?;
            self.provisioner
                .grant_tenant_connect(&server, db.as_str(), &db)
                .await?;
            Ok::<_, BackupsError>(version)
        }
        .await;
        let version = match made {
            Ok(v) => v,
            Err(e @ BackupsError::Abandoned(_)) => return Err(e),
            Err(e) => {
                tracing::error!(tenant.id = %id, error = %e, "restore as a new tenant failed; undoing it");
                self.undo_clone(record, &server, lease, e.code(), &e.to_string())
                    .await;
                return Err(e);
            }
        };
        if let Err(e) = self
            .catalog
            .finish_restored_clone(lease.fence(), id, &subtenants, version)
            .await
        {
            if !matches!(e, crate::catalog::CatalogError::Fenced) {
                self.undo_clone(record, &server, lease, e.code(), &e.to_string())
                    .await;
            }
            return Err(e.into());
        }
        let record = self.record(id).await?;
        Ok(RestoreReport {
            tenant: self.view(&record).await?,
            from_schema_version: archive.manifest.schema_version,
            schema_version: version,
            domains_skipped: doc.domains.clone(),
            subtenants_renamed: doc
                .subtenants
                .iter()
                .zip(&subtenants)
                .map(|(old, new)| RenamedSubtenant {
                    from: old.slug.clone(),
                    to: new.slug.to_string(),
                })
                .collect(),
        })
    }

    pub(super) async fn undo_clone(
        &self,
        record: &TenantRecord,
        server: &DbServer,
        lease: &Lease,
        code: ErrorCode,
        error: &str,
    ) {
        let db = DbName::for_tenant(record.id);
        let dropped = async {
            let held = self.hold_on(lease, record.id, server.id).await?;
            self.provisioner.drop_tenant_database(server, &db).await?;
            held.release().await;
            Ok::<_, BackupsError>(())
        }
        .await;
        if let Err(e) = dropped {
            tracing::error!(tenant.id = %record.id, error = %e, "could not drop a half-restored clone; the reconciler retries");
            lease.release("undoing the restore failed").await;
            return;
        }
        // Kept for the record, but purged: the slug is free for another try.
        let change = TenantChange {
            status: Some(TenantStatus::Failed),
            error: Some(error.chars().take(500).collect()),
            purged: true,
            ..TenantChange::default()
        };
        let failure = Failure {
            code,
            message: error,
        };
        if let Err(e) = lease.finish(record.id, Some(failure), &change).await {
            tracing::error!(tenant.id = %record.id, error = %e, "could not record a failed restore");
        }
    }

    /// A snapshot's sealed secrets, sealed again for `new_id`.
    fn reseal(
        &self,
        snap: &TenantSnapshot,
        new_id: TenantId,
    ) -> Result<Option<Vec<u8>>, BackupsError> {
        let Some(sealed) = super::restore_backup::sealed(snap)? else {
            return Ok(None);
        };
        let plain = self.master_key.open(&settings_purpose(snap.id), &sealed)?;
        Ok(Some(
            self.master_key.seal(&settings_purpose(new_id), &plain),
        ))
    }
}
