//! Backing up one root tenant: its database (`pg_dump -Fc`), its catalog
//! records (settings, subtenants, domains) and a sealed manifest, in one
//! archive file. A backup takes no operation lock: `pg_dump` reads one
//! consistent snapshot while the tenant keeps working.

use std::path::Path;

use super::{Tenants, TenantsError};
use crate::backup::{write_archive, Manifest, TenantDocument, TenantSnapshot};
use crate::catalog::TenantRecord;
use crate::domain::{DbName, TenantId, TenantStatus};

impl Tenants {
    /// Writes the backup of root tenant `id` to `out`; returns its manifest.
    #[tracing::instrument(skip_all, fields(tenant.id = %id))]
    pub async fn backup(&self, id: TenantId, out: &Path) -> Result<Manifest, TenantsError> {
        let started = std::time::Instant::now();
        let result = self.write_backup(id, out).await;
        crate::telemetry::metrics::record_operation("backup", started, result.is_ok());
        result
    }

    async fn write_backup(&self, id: TenantId, out: &Path) -> Result<Manifest, TenantsError> {
        let record = self.record(id).await?;
        if record.parent_id.is_some() {
            return Err(TenantsError::InvalidState {
                action: "back up a subtenant on its own (back up its root tenant);",
                status: record.status,
            });
        }
        if matches!(
            record.status,
            TenantStatus::Provisioning | TenantStatus::Failed | TenantStatus::Deleting
        ) {
            return Err(TenantsError::InvalidState {
                action: "back up",
                status: record.status,
            });
        }
        let started_at = chrono::Utc::now();
        let server = self.server_of(&record).await?;
        let db = DbName::for_tenant(id);
        let config = self.provisioner.admin_config(&server, db.as_str())?;
        let dir = crate::backup::directory_of(out);
        let dump = tempfile::Builder::new()
            .prefix(".tenant-dump-")
            .tempfile_in(dir)
            .map_err(|e| TenantsError::copy("creating the dump file", e))?;
        self.dump.dump(&config, dump.path()).await?;
        let document = TenantDocument {
            tenant: snapshot(&record),
            subtenants: self
                .catalog
                .subtenants_of(id)
                .await?
                .iter()
                .map(snapshot)
                .collect(),
            domains: self.catalog.domains_of(id).await?,
        };
        let manifest = Manifest {
            format_version: 0,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            pg_dump_version: self.dump.version().await,
            server_version: self.provisioner.server_version(&server).await?,
            tenant_id: id,
            slug: record.slug.clone(),
            schema_version: record.schema_version,
            started_at,
            finished_at: chrono::Utc::now(),
            parts: Default::default(),
        };
        let key = self.master_key.clone();
        let out = out.to_path_buf();
        let manifest = tokio::task::spawn_blocking(move || {
            write_archive(&out, &key, manifest, &document, dump.path())
        })
        .await
        .map_err(|e| TenantsError::copy("writing the archive", e))??;
        Ok(manifest)
    }
}

impl Tenants {
    /// Before a purge: the tenant's last backup, in the configured backup
    /// location (`<location>/<tenant id>/<UTC time>-final.tpbackup`). A purge
    /// whose final backup fails does not happen. Nothing to do without a
    /// location.
    pub(crate) async fn final_backup(&self, record: &TenantRecord) -> Result<(), TenantsError> {
        let Some(location) = &self.backup_dir else {
            return Ok(());
        };
        let dir = location.join(record.id.to_string());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| TenantsError::copy("creating the backup folder", e))?;
        let out = dir.join(format!(
            "{}-final.tpbackup",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        self.write_backup(record.id, &out).await?;
        tracing::info!(tenant.id = %record.id, archive = %out.display(), "kept a final backup before the purge");
        Ok(())
    }
}

fn snapshot(record: &TenantRecord) -> TenantSnapshot {
    TenantSnapshot {
        id: record.id,
        slug: record.slug.clone(),
        name: record.name.clone(),
        tier: record.tier,
        status: record.status,
        schema_version: record.schema_version,
        settings: record.settings.clone(),
        settings_secrets_enc: record.settings_secrets_enc.as_deref().map(hex::encode),
    }
}
