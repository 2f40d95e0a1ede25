//! Scheduled backups and their retention, run by the reconciler's pass:
//! each active root tenant is backed up once its tier's interval has gone
//! by since its newest backup, and of a tenant's backups the newest of each
//! of the last `keep_daily` days and `keep_weekly` ISO weeks are kept; the
//! rest are deleted from the location. A purge's final backup is never
//! pruned.
//!
//! Rule: retention deletes a backup's object before its row is marked
//! pruned, so a failed delete is retried by the next pass.

use std::collections::HashSet;

use chrono::Datelike;
use uuid::Uuid;

use super::BackupsError;
use crate::catalog::{BackupReason, BackupRecord};
use crate::config::BackupSettings;
use crate::domain::{TenantId, Tier};
use crate::tenants::Tenants;

/// Scheduled backups taken by one pass, at most: the rest wait for the next.
const BACKUPS_PER_PASS: i64 = 8;

impl Tenants {
    /// Takes the backups that are due; returns the tenants backed up and
    /// those whose backup failed.
    pub async fn run_scheduled_backups(
        &self,
        settings: &BackupSettings,
    ) -> Result<(Vec<TenantId>, Vec<(TenantId, String)>), BackupsError> {
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        if self.backups.is_none() {
            return Ok((done, failed));
        }
        // One replica at a time, so a due tenant is backed up once.
        let Some(_lock) = self.catalog.try_schedule_lock().await? else {
            return Ok((done, failed));
        };
        for tier in [Tier::Enterprise, Tier::Standard, Tier::Free] {
            let Some(every) = settings.every(tier) else {
                continue;
            };
            let due = self
                .catalog
                .tenants_due_for_backup(tier, every, BACKUPS_PER_PASS)
                .await?;
            for tenant in due {
                let outcome = match self.start_backup(tenant, BackupReason::Scheduled).await {
                    Ok(started) => match started.run {
                        Some(run) => run.await.map(|_| ()),
                        None => Ok(()),
                    },
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => done.push(tenant),
                    Err(e) => failed.push((tenant, e.to_string())),
                }
            }
        }
        Ok((done, failed))
    }

    /// Deletes the backups retention does not keep; returns how many.
    pub async fn prune_backups(&self, settings: &BackupSettings) -> Result<u64, BackupsError> {
        let Some(store) = &self.backups else {
            return Ok(0);
        };
        let most_kept = i64::from(settings.keep_daily + settings.keep_weekly);
        let mut pruned = 0;
        for tenant in self
            .catalog
            .tenants_with_backups_over(most_kept.max(1))
            .await?
        {
            let backups = self.catalog.list_backups(tenant).await?;
            for id in to_prune(&backups, settings.keep_daily, settings.keep_weekly) {
                let Some(backup) = backups.iter().find(|b| b.id == id) else {
                    continue;
                };
                // The row goes only once the object is gone, so a failed
                // delete is tried again by the next pass.
                if let Some(key) = store.key_of(&backup.location) {
                    store.delete(&key).await?;
                }
                self.catalog.mark_backup_pruned(id).await?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }
}

/// Of one tenant's backups (newest first), those retention removes: all
/// but the newest of each of the last `daily` days and `weekly` weeks that
/// have one, the newest of all, and every final backup.
pub fn to_prune(backups: &[BackupRecord], daily: u32, weekly: u32) -> Vec<Uuid> {
    let mut keep: HashSet<Uuid> = HashSet::new();
    let (mut days, mut weeks) = (HashSet::new(), HashSet::new());
    for (i, b) in backups.iter().enumerate() {
        if b.reason == BackupReason::Final || i == 0 {
            keep.insert(b.id);
        }
        let day = b.created_at.date_naive();
        if days.len() < daily as usize && days.insert(day) {
            keep.insert(b.id);
        }
        let week = (
            b.created_at.iso_week().year(),
            b.created_at.iso_week().week(),
        );
        if weeks.len() < weekly as usize && weeks.insert(week) {
            keep.insert(b.id);
        }
    }
    backups
        .iter()
        .filter(|b| !keep.contains(&b.id))
        .map(|b| b.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    fn backup(hours_ago: i64, reason: BackupReason) -> BackupRecord {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        BackupRecord {
            id: Uuid::now_v7(),
            tenant_id: TenantId::generate(),
            operation_id: None,
            location: String::new(),
            bytes: 1,
            sha256: String::new(),
            schema_version: 1,
            reason,
            created_at: now - Duration::hours(hours_ago),
        }
    }

    #[test]
    fn retention_keeps_the_newest_of_each_recent_day_and_week_and_every_final_backup() {
        // Every 6 hours for 60 days, newest first, and one final backup.
        let mut backups: Vec<BackupRecord> = (0..240)
            .map(|i| backup(i * 6, BackupReason::Scheduled))
            .collect();
        backups.insert(100, backup(599, BackupReason::Final));
        let pruned: HashSet<Uuid> = to_prune(&backups, 7, 4).into_iter().collect();
        let kept: Vec<&BackupRecord> = backups.iter().filter(|b| !pruned.contains(&b.id)).collect();
        let days: HashSet<_> = kept
            .iter()
            .filter(|b| b.reason != BackupReason::Final)
            .map(|b| b.created_at.date_naive())
            .collect();
        // Seven days of dailies; the weeklies fall on days already kept or
        // on older ones, at most four of them.
        assert!(kept.len() >= 8 && kept.len() <= 7 + 4 + 1, "{}", kept.len());
        assert!(days.len() >= 7, "{days:?}");
        assert!(kept.iter().any(|b| b.reason == BackupReason::Final));
        assert_eq!(kept[0].id, backups[0].id, "the newest is kept");
        // Each kept daily is its day's newest.
        for b in kept.iter().filter(|b| b.reason != BackupReason::Final) {
            let newer_same_day = backups.iter().any(|o| {
                o.created_at.date_naive() == b.created_at.date_naive()
                    && o.created_at > b.created_at
            });
            assert!(!newer_same_day, "{} is not its day's newest", b.created_at);
        }
    }

    #[test]
    fn retention_with_nothing_to_remove_prunes_nothing() {
        let backups = vec![
            backup(0, BackupReason::Manual),
            backup(30, BackupReason::Scheduled),
        ];
        assert!(to_prune(&backups, 7, 4).is_empty());
        assert!(to_prune(&[], 7, 4).is_empty());
    }
}
