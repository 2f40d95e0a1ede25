//! The embedded cluster's base backups, taken by the reconciler's backup
//! loop as `base_backup` operations (subject: the server), one replica at
//! a time: a full one every `backup.full_every_days`, a differential every
//! `backup.diff_every_hours` between them. pgBackRest expires what the
//! retention (`backup.keep_weekly` full backups) no longer keeps, and the
//! WAL only they needed, right after each backup.

use chrono::Utc;

use super::super::{BackupsError, Tenants};
use crate::catalog::{Ending, OpKind};
use crate::error_code::ErrorCode;
use crate::operations::Lease;
use crate::wal_archive::BackupKind;

impl Tenants {
    /// The base backup that is due now, if any: a full one when there is
    /// none or the newest is older than `full_every`, else a differential
    /// when the newest backup is older than `diff_every`.
    async fn due_base_backup(&self) -> Result<Option<BackupKind>, BackupsError> {
        let Some(tools) = self.pitr.as_deref() else {
            return Ok(None);
        };
        let Some(embedded) = &tools.embedded else {
            return Ok(None);
        };
        let info = self.archive_info(&embedded.archive).await?;
        let age = |kind| {
            info.newest(kind)
                .map(|b| (Utc::now() - b.stopped_at).to_std().unwrap_or_default())
        };
        let older = |age: Option<std::time::Duration>, every: Option<std::time::Duration>| match (
            age, every,
        ) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(age), Some(every)) => age >= every,
        };
        if info.newest(BackupKind::Full).is_none() || older(age(BackupKind::Full), tools.full_every)
        {
            return Ok(Some(BackupKind::Full));
        }
        if older(age(BackupKind::Diff), tools.diff_every) {
            return Ok(Some(BackupKind::Diff));
        }
        Ok(None)
    }

    /// Takes the base backup that is due, as an operation; the kind taken.
    pub async fn run_due_base_backup(&self) -> Result<Option<BackupKind>, BackupsError> {
        let Some(kind) = self.due_base_backup().await? else {
            return Ok(None);
        };
        self.take_base_backup(kind)
            .await
            .map(|taken| taken.then_some(kind))
    }

    /// Takes a base backup of the embedded cluster now. `false` when
    /// another replica's is under way.
    pub async fn take_base_backup(&self, kind: BackupKind) -> Result<bool, BackupsError> {
        let tools = self.pitr()?;
        let embedded = tools.embedded.as_ref().ok_or(BackupsError::NoWalArchive)?;
        let server = self
            .catalog
            .list_servers()
            .await?
            .into_iter()
            .find(|s| s.is_catalog)
            .ok_or(BackupsError::Inconsistent("no catalog server"))?;
        let params = serde_json::json!({ "type": kind.as_str() });
        let Ok(lease) = self
            .ops
            .begin_subject(OpKind::BaseBackup, server.id, None, params)
            .await?
        else {
            return Ok(false);
        };
        let started = std::time::Instant::now();
        let taken = lease
            .guard(async { Ok::<_, BackupsError>(embedded.backup(kind).await) })
            .await?;
        crate::telemetry::metrics::record_operation("base_backup", started, taken.is_ok());
        match taken {
            Ok(()) => {
                lease.end(Ending::Succeeded, None, None).await?;
                tracing::info!(
                    kind = kind.as_str(),
                    "took a base backup of the embedded cluster"
                );
                Ok(true)
            }
            Err(e) => {
                let message = e.to_string();
                lease
                    .end(
                        Ending::Failed,
                        Some(ErrorCode::BaseBackupFailed),
                        Some(&message),
                    )
                    .await?;
                Err(e.into())
            }
        }
    }

    /// A base backup whose process stopped: not resumed, the schedule
    /// takes another (pgBackRest cleans up the partial one).
    pub async fn abandon_base_backup(&self, lease: &Lease) -> Result<(), BackupsError> {
        lease
            .end(
                Ending::Failed,
                Some(ErrorCode::Interrupted),
                Some("the process taking the base backup stopped; the next scheduled pass takes another"),
            )
            .await?;
        Ok(())
    }
}
