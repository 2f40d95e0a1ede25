//! Restoring a root tenant as of a time: in place (suspended or deleted
//! first, as any restore) or as a new tenant, as an operation whose steps
//! are `wal_archived`, `files_restored`, `recovered`, `dumped`, then the
//! backup restore's own.
//!
//! Rule: the scratch cluster is removed when the recovery ends, whatever
//! happened; a process killed meanwhile leaves it to the next start's
//! sweep (`wal_archive::stop_clusters_under`), and the operation is taken
//! over as any interrupted restore is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::super::backups::{snapshot, Started};
use super::super::{BackupsError, RestoreReport, RestoreTarget, Tenants};
use crate::backup::{Manifest, TenantDocument, TenantSnapshot, VerifiedArchive};
use crate::catalog::{OpKind, TenantRecord};
use crate::domain::{DbName, TenantId};
use crate::operations::Lease;
use crate::wal_archive::{Recovery, WalArchiveError};

/// How long a restore waits for the server to archive its WAL up to now.
const ARCHIVE_WAIT: Duration = Duration::from_secs(120);

impl Tenants {
    /// Begins restoring `tenant` as of `at`, once `at` is found in its
    /// recovery window.
    pub async fn start_restore_to_time(
        &self,
        tenant: TenantId,
        at: DateTime<Utc>,
        target: RestoreTarget,
    ) -> Result<Started<RestoreReport>, BackupsError> {
        self.pitr()?;
        let window = self.recovery_window(tenant).await?;
        if at > Utc::now() || !window.holds(at) {
            return Err(BackupsError::OutsideRecoveryWindow {
                earliest: window.earliest,
                latest: window.latest,
            });
        }
        let tenants = self.clone();
        match target {
            RestoreTarget::SameTenant => {
                // `same_tenant`: a takeover finishes or undoes it as any
                // in-place restore (any other mode reads as a clone's).
                let params = serde_json::json!({ "mode": "same_tenant", "at": at });
                let (record, lease) = self.begin_restore_in_place(tenant, params).await?;
                let op = lease.op();
                let run = async move {
                    lease
                        .guard(async {
                            let archive = match tenants.recover_to(&record, at, &lease).await {
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
                // Not the tenant's lock: the source stays as it is.
                let subject = Uuid::now_v7();
                let params =
                    serde_json::json!({ "source": tenant, "slug": slug.as_str(), "at": at });
                let lease = self
                    .ops
                    .begin_subject(OpKind::RestoreAsNew, subject, Some(tenant), params)
                    .await?
                    .map_err(|_| BackupsError::Busy)?;
                let op = lease.op();
                let run = async move {
                    let work = async {
                        let record = tenants.record(tenant).await?;
                        let archive = tenants.recover_to(&record, at, &lease).await?;
                        tenants
                            .restore_backup(&archive, RestoreTarget::AsNew { slug })
                            .await
                    };
                    let result = lease.guard(work).await;
                    tenants
                        .end_restore_as_new(&lease, subject, tenant, &result)
                        .await?;
                    result
                };
                Ok(Started::new(op, run))
            }
        }
    }

    /// `record`'s database as of `at`, recovered in a scratch cluster and
    /// dumped, with the tenant's catalog records as they are now: what the
    /// backup restore path takes.
    async fn recover_to(
        &self,
        record: &TenantRecord,
        at: DateTime<Utc>,
        lease: &Lease,
    ) -> Result<VerifiedArchive, BackupsError> {
        let tools = self.pitr()?;
        let started_at = Utc::now();
        let server = self.server_of(record).await?;
        let archive = self.archive_of(&server).await?;
        // The WAL up to now, pushed: "ten seconds ago" is in the archive.
        // A server that does not answer is restored from what the archive
        // holds (the window checked `at` against it).
        match self.provisioner.archive_now(&server, ARCHIVE_WAIT).await {
            Ok(Ok(_)) => lease.step("wal_archived", None).await?,
            Ok(Err(why)) => return Err(WalArchiveError::Recovery(why).into()),
            Err(e) => {
                tracing::warn!(error = %e, "the server does not answer; restoring from what its archive holds")
            }
        }
        crate::failpoint!("restore_time.after_wal");
        let db = DbName::for_tenant(record.id);
        let process_dir = tools.process_dir()?;
        let recovery = Recovery::prepare(
            process_dir,
            lease.op(),
            tools.pgbackrest.clone(),
            tools.binaries.clone(),
        )?;
        let dumped = async {
            recovery.restore(&archive, db.as_str(), at).await?;
            lease.step("files_restored", None).await?;
            crate::failpoint!("restore_time.after_files");
            let recovered = recovery.recover(db.as_str()).await?;
            lease.step("recovered", None).await?;
            crate::failpoint!("restore_time.after_recovery");
            let config = crate::pg::PgConfig::parse(&recovered.dsn)
                .map_err(|e| WalArchiveError::Recovery(e.to_string()))?;
            let version = {
                let (client, connection) = config
                    .connect()
                    .await
                    .map_err(|e| WalArchiveError::Recovery(e.to_string()))?;
                let driver = tokio::spawn(connection);
                let version = crate::migrator::current_version(&client).await;
                drop(client);
                let _ = driver.await;
                version?
            };
            let dir = tempfile::Builder::new()
                .prefix(".tenant-dump-")
                .tempdir_in(self.scratch_dir().map_err(BackupsError::scratch)?)
                .map_err(|e| BackupsError::copy("creating the dump folder", e))?;
            let dump = dir.path().join(crate::backup::DATABASE_PART);
            self.dump.dump_transient(&config, &dump).await?;
            lease.step("dumped", None).await?;
            crate::failpoint!("restore_time.after_dump");
            Ok::<_, BackupsError>((dir, dump, version))
        }
        .await;
        recovery.remove().await;
        let (dir, dump, version) = dumped?;
        let document = TenantDocument {
            tenant: TenantSnapshot {
                schema_version: version,
                ..snapshot(record)
            },
            // Purged ones too: their rows leave the restored copy.
            subtenants: self
                .catalog
                .subtenants_ever_of(record.id)
                .await?
                .iter()
                .map(|sub| TenantSnapshot {
                    schema_version: version,
                    ..snapshot(sub)
                })
                .collect(),
            domains: self.catalog.domains_of(record.id).await?,
        };
        let manifest = Manifest {
            format_version: crate::backup::FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            pg_dump_version: self.dump.version().await,
            server_version: self.provisioner.server_version(&server).await?,
            tenant_id: record.id,
            slug: record.slug.to_string(),
            schema_version: version,
            started_at,
            finished_at: Utc::now(),
            parts: Default::default(),
        };
        self.check_schema(version)?;
        Ok(VerifiedArchive::made_here(manifest, document, dump, dir))
    }
}
