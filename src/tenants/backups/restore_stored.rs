//! Restoring a backup kept in the backup location, as an operation: read
//! it as a stream, decrypt and verify it (its SHA-256 against the one
//! recorded, its seal, every part) before anything is touched, then restore
//! it in place or as a new tenant.

use uuid::Uuid;

use super::{BackupsError, RestoreReport, RestoreTarget, Started};
use crate::backup::{read_archive_from, BackupError, VerifiedArchive};
use crate::catalog::{BackupRecord, Ending, OpKind};
use crate::domain::TenantId;
use crate::error_code::ErrorCode;
use crate::operations::Lease;
use crate::tenants::Tenants;

impl Tenants {
    /// A recorded backup, read from the location and verified.
    pub async fn fetch_backup(
        &self,
        backup: &BackupRecord,
    ) -> Result<VerifiedArchive, BackupsError> {
        let store = self.backup_store()?;
        let key = store.key_of(&backup.location).ok_or_else(|| {
            BackupError::Location(format!(
                "{} is not in the configured backup location",
                backup.location
            ))
        })?;
        let master = self.master_key.clone();
        let scratch = self
            .scratch_dir()
            .map_err(BackupsError::scratch)?
            .to_path_buf();
        let (archive, sha256) = store
            .download(&key, move |input| {
                read_archive_from(input, &master, &scratch)
            })
            .await?;
        if sha256 != backup.sha256 {
            return Err(BackupError::Corrupt(
                "the object's SHA-256 is not the one recorded when it was written".into(),
            )
            .into());
        }
        if archive.manifest.tenant_id != backup.tenant_id {
            return Err(BackupsError::ForeignBackup);
        }
        self.check_schema(archive.manifest.schema_version)?;
        Ok(archive)
    }

    /// A kept backup of `tenant`.
    pub async fn backup_of(
        &self,
        tenant: TenantId,
        backup: Uuid,
    ) -> Result<BackupRecord, BackupsError> {
        self.catalog
            .get_backup(tenant, backup)
            .await?
            .ok_or(BackupsError::BackupNotFound)
    }

    /// Begins restoring backup `backup` of `tenant`: in place (the tenant,
    /// read under its lock, must be suspended or deleted) or as a new
    /// tenant. The archive is read and verified when `run` is awaited, and
    /// a refused one fails the operation with nothing touched.
    pub async fn start_restore(
        &self,
        tenant: TenantId,
        backup: Uuid,
        target: RestoreTarget,
    ) -> Result<Started<RestoreReport>, BackupsError> {
        self.backup_store()?;
        let stored = self.backup_of(tenant, backup).await?;
        // Refused now, with nothing begun, when the record already says so;
        // the archive's own manifest is checked again once it is read.
        self.check_schema(stored.schema_version)?;
        let tenants = self.clone();
        match target {
            RestoreTarget::SameTenant => {
                let (record, lease) = self
                    .begin_restore_in_place(
                        tenant,
                        serde_json::json!({ "mode": "same_tenant", "backup": backup }),
                    )
                    .await?;
                let op = lease.op();
                let run = async move {
                    lease
                        .guard(async {
                            let archive = match tenants.fetch_backup(&stored).await {
                                Ok(archive) => archive,
                                Err(e) => {
                                    lease.fail(tenant, e.code(), &e.to_string()).await?;
                                    return Err(e);
                                }
                            };
                            tenants
                                .run_restore_in_place(&record, &archive, &lease)
                                .await
                        })
                        .await
                };
                Ok(Started::new(op, run))
            }
            RestoreTarget::AsNew { slug } => {
                let lease = self
                    .ops
                    .begin_subject(
                        OpKind::RestoreAsNew,
                        backup,
                        // Named like any tenant's operation; like a backup,
                        // it does not hold the tenant's lock (catalog V11).
                        Some(tenant),
                        serde_json::json!({ "source": tenant, "slug": slug.as_str() }),
                    )
                    .await?
                    .map_err(|_| BackupsError::Busy)?;
                let op = lease.op();
                let run = async move {
                    let work = async {
                        let archive = tenants.fetch_backup(&stored).await?;
                        tenants
                            .restore_backup(&archive, RestoreTarget::AsNew { slug })
                            .await
                    };
                    let result = lease.guard(work).await;
                    tenants
                        .end_restore_as_new(&lease, backup, tenant, &result)
                        .await?;
                    result
                };
                Ok(Started::new(op, run))
            }
        }
    }

    /// Ends the outer operation of a restore as a new tenant, naming the
    /// new tenant.
    pub(in crate::tenants) async fn end_restore_as_new(
        &self,
        lease: &Lease,
        backup: Uuid,
        source: TenantId,
        result: &Result<RestoreReport, BackupsError>,
    ) -> Result<(), BackupsError> {
        match result {
            Ok(report) => {
                let params = serde_json::json!({
                    "subject": backup.to_string(),
                    "source": source,
                    "new_tenant": report.tenant.id,
                    "subtenants_renamed": report.subtenants_renamed,
                });
                lease.step("restored", Some(&params)).await?;
                lease.end(Ending::Succeeded, None, None).await?;
            }
            Err(BackupsError::Abandoned(_)) => {}
            Err(e) => {
                lease
                    .end(Ending::Failed, Some(e.code()), Some(&e.to_string()))
                    .await?
            }
        }
        Ok(())
    }

    /// A restore as a new tenant whose process stopped: the new tenant's
    /// own operation is finished or undone by the reconciler; this one
    /// only records that it was cut off.
    pub async fn abandon_restore_as_new(&self, lease: &Lease) -> Result<(), BackupsError> {
        lease
            .end(
                Ending::Failed,
                Some(ErrorCode::Interrupted),
                Some("the process running the restore stopped; the new tenant's own operation says whether it was made"),
            )
            .await?;
        Ok(())
    }
}
