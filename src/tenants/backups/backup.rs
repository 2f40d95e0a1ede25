//! Backing up one root tenant: its database (`pg_dump -Fc`), its catalog
//! records (settings, subtenants, domains) and a sealed manifest, in one
//! encrypted archive. A backup takes no tenant lock: `pg_dump` reads one
//! consistent snapshot while the tenant keeps working. Into the backup
//! location it is a `backup` operation (which a cancel stops) and a row in
//! `backups`; the CLI can also write one to a file.
//!
//! Rule: an object is recorded in `backups` only once it is whole in the
//! location; nothing in the location is ever plaintext.

use std::path::Path;

use uuid::Uuid;

use super::{BackupsError, Started};
use crate::backup::{
    write_archive, write_archive_to, BackupStore, Manifest, TenantDocument, TenantSnapshot,
};
use crate::catalog::{BackupReason, BackupRecord, Ending, OpKind, TenantRecord};
use crate::domain::{DbName, TenantId, TenantStatus};
use crate::error_code::ErrorCode;
use crate::operations::Lease;
use crate::tenants::Tenants;

/// A dump made and the archive's contents gathered, ready to be written.
struct Prepared {
    manifest: Manifest,
    document: TenantDocument,
    dump: tempfile::NamedTempFile,
}

impl Tenants {
    /// Writes the backup of root tenant `id` to the file `out`; returns its
    /// manifest.
    #[tracing::instrument(skip_all, fields(tenant.id = %id))]
    pub async fn backup(&self, id: TenantId, out: &Path) -> Result<Manifest, BackupsError> {
        let started = std::time::Instant::now();
        let result = async {
            let record = self.backupable(id).await?;
            let prepared = self.prepare(&record).await?;
            let key = self.master_key.clone();
            let out = out.to_path_buf();
            tokio::task::spawn_blocking(move || {
                write_archive(
                    &out,
                    &key,
                    prepared.manifest,
                    &prepared.document,
                    prepared.dump.path(),
                )
            })
            .await
            .map_err(|e| BackupsError::copy("writing the archive", e))?
            .map_err(BackupsError::from)
        }
        .await;
        crate::telemetry::metrics::record_operation("backup", started, result.is_ok());
        result
    }

    /// The backup location, or why there is none.
    pub fn backup_store(&self) -> Result<&BackupStore, BackupsError> {
        self.backups.as_ref().ok_or(BackupsError::NoBackupLocation)
    }

    /// Begins a backup of root tenant `id` into the backup location; its
    /// work runs when `run` is awaited.
    pub async fn start_backup(
        &self,
        id: TenantId,
        reason: BackupReason,
    ) -> Result<Started<BackupRecord>, BackupsError> {
        self.backup_store()?;
        let record = self.backupable(id).await?;
        let backup = Uuid::now_v7();
        let lease = self
            .ops
            .begin_subject(
                OpKind::Backup,
                backup,
                Some(id),
                serde_json::json!({ "reason": reason.as_str() }),
            )
            .await?
            .map_err(|_| BackupsError::Busy)?;
        let tenants = self.clone();
        let op = lease.op();
        let run = async move {
            let started = std::time::Instant::now();
            let work = tenants.run_backup(&record, backup, reason, &lease);
            // A cancel drops the work where it stands: a partial upload is
            // aborted with it, and nothing is recorded.
            let result = tokio::select! {
                result = lease.guard(work) => result,
                () = lease.cancelled() => Err(BackupsError::Cancelled),
            };
            match &result {
                Ok(_) | Err(BackupsError::Abandoned(_)) => {}
                Err(BackupsError::Cancelled) => {
                    lease
                        .end(
                            Ending::Cancelled,
                            Some(ErrorCode::Cancelled),
                            Some("cancelled before the archive was whole"),
                        )
                        .await?;
                }
                Err(e) => {
                    // A dump that failed is the backup's failure, not a move's.
                    let code = match e {
                        BackupsError::Dump(_) | BackupsError::Copy { .. } => {
                            ErrorCode::BackupFailed
                        }
                        e => e.code(),
                    };
                    let _ = lease
                        .end(Ending::Failed, Some(code), Some(&e.to_string()))
                        .await;
                }
            }
            crate::telemetry::metrics::record_operation("backup", started, result.is_ok());
            result
        };
        // Whoever runs it (the API, the schedule, the CLI), what it logs
        // (a failed pg_dump's own words) names the operation.
        let run = tracing::Instrument::instrument(run, tracing::info_span!("backup", op = %op));
        Ok(Started::new(op, run))
    }

    async fn run_backup(
        &self,
        record: &TenantRecord,
        backup: Uuid,
        reason: BackupReason,
        lease: &Lease,
    ) -> Result<BackupRecord, BackupsError> {
        let stored = self
            .write_to_store(record, backup, reason, Some(lease))
            .await?;
        lease.end(Ending::Succeeded, None, None).await?;
        Ok(stored)
    }

    /// Dumps the tenant and streams its encrypted archive into the backup
    /// location, then records it.
    async fn write_to_store(
        &self,
        record: &TenantRecord,
        backup: Uuid,
        reason: BackupReason,
        lease: Option<&Lease>,
    ) -> Result<BackupRecord, BackupsError> {
        let store = self.backup_store()?.clone();
        let prepared = self.prepare(record).await?;
        crate::failpoint!("backup.before_upload");
        if let Some(lease) = lease {
            // A cancel taken by another replica is seen here, not on the
            // next beat: nothing is written after it.
            if lease.check_cancel().await {
                return Err(BackupsError::Cancelled);
            }
            lease.step("upload", None).await?;
        }
        let key = self.master_key.clone();
        let object = store.key_for(record.id, backup, reason.as_str());
        let schema_version = prepared.manifest.schema_version;
        let (_, stored) = store
            .upload(&object, move |out| {
                write_archive_to(
                    out,
                    &key,
                    prepared.manifest,
                    &prepared.document,
                    prepared.dump.path(),
                )
            })
            .await?;
        if let Some(lease) = lease {
            lease
                .progress(None, None, i64::try_from(stored.bytes).ok())
                .await;
        }
        let row = BackupRecord {
            id: backup,
            tenant_id: record.id,
            operation_id: lease.map(Lease::op),
            location: stored.location,
            bytes: i64::try_from(stored.bytes).unwrap_or(i64::MAX),
            sha256: stored.sha256,
            schema_version,
            reason,
            created_at: chrono::Utc::now(),
        };
        self.catalog.insert_backup(&row).await?;
        tracing::info!(tenant.id = %record.id, backup = %backup, bytes = row.bytes, "backup written");
        Ok(row)
    }

    /// A root tenant in a state that can be backed up.
    async fn backupable(&self, id: TenantId) -> Result<TenantRecord, BackupsError> {
        let record = self.record(id).await?;
        if record.parent_id.is_some() {
            return Err(BackupsError::InvalidState {
                action: "back up a subtenant on its own (back up its root tenant);",
                status: record.status,
            });
        }
        if matches!(
            record.status,
            TenantStatus::Provisioning | TenantStatus::Failed | TenantStatus::Deleting
        ) {
            return Err(BackupsError::InvalidState {
                action: "back up",
                status: record.status,
            });
        }
        Ok(record)
    }

    /// Dumps the database into a temporary file in the scratch folder and
    /// gathers the catalog records and the manifest.
    async fn prepare(&self, record: &TenantRecord) -> Result<Prepared, BackupsError> {
        let id = record.id;
        let started_at = chrono::Utc::now();
        let server = self.server_of(record).await?;
        let db = DbName::for_tenant(id);
        let config = self.provisioner.admin_config(&server, db.as_str())?;
        let dump = tempfile::Builder::new()
            .prefix(".tenant-dump-")
            .tempfile_in(self.scratch_dir().map_err(BackupsError::scratch)?)
            .map_err(|e| BackupsError::copy("creating the dump file", e))?;
        self.dump.dump(&config, dump.path()).await?;
        let document = TenantDocument {
            tenant: snapshot(record),
            subtenants: self
                .catalog
                .subtenants_of(id)
                .await?
                .iter()
                // A subtenant shares its root's database, so its schema is
                // the root's version (its own catalog row keeps none).
                .map(|sub| TenantSnapshot {
                    schema_version: record.schema_version,
                    ..snapshot(sub)
                })
                .collect(),
            domains: self.catalog.domains_of(id).await?,
        };
        let manifest = Manifest {
            format_version: 0,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            pg_dump_version: self.dump.version().await,
            server_version: self.provisioner.server_version(&server).await?,
            tenant_id: id,
            slug: record.slug.to_string(),
            schema_version: record.schema_version,
            started_at,
            finished_at: chrono::Utc::now(),
            parts: Default::default(),
        };
        Ok(Prepared {
            manifest,
            document,
            dump,
        })
    }

    /// Before a purge: the tenant's last backup, in the backup location
    /// (kept by retention for good). A purge whose final backup fails does
    /// not happen. Nothing to do without a location.
    pub(crate) async fn final_backup(&self, record: &TenantRecord) -> Result<(), BackupsError> {
        if self.backups.is_none() {
            return Ok(());
        }
        let stored = self
            .write_to_store(record, Uuid::now_v7(), BackupReason::Final, None)
            .await?;
        tracing::info!(tenant.id = %record.id, archive = %stored.location, "kept a final backup before the purge");
        Ok(())
    }
}

pub(in crate::tenants) fn snapshot(record: &TenantRecord) -> TenantSnapshot {
    TenantSnapshot {
        id: record.id,
        slug: record.slug.to_string(),
        name: record.name.clone(),
        tier: record.tier,
        status: record.status,
        schema_version: record.schema_version,
        settings: record.settings.clone(),
        settings_secrets_enc: record.settings_secrets_enc.as_deref().map(hex::encode),
    }
}
