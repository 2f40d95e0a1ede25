//! What this process needs for point-in-time restores, found at start:
//! pgBackRest and the server programs for scratch clusters; and the
//! recovery folder (`backup.recovery_dir`), swept at start of what a killed
//! process left, but made only when a restore first needs it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::PitrTools;
use crate::config::Settings;
use crate::local_pg::{first_blocker, PgBinaries};
use crate::wal_archive::{EmbeddedArchive, PgBackRest};

/// Where scratch clusters go: `<backup.recovery_dir>/tenant-plane-recovery`
/// when set; else `<scratch_dir>/recovery` when the `postgres` user can
/// reach the scratch folder, or `<embedded.fallback_dir>/recovery`. A
/// folder we make and hand to that user: nothing above it changes.
pub struct RecoveryFolder {
    configured: Option<PathBuf>,
    scratch_dir: PathBuf,
    fallback_dir: PathBuf,
    opened: OnceLock<Result<crate::backup::Scratch, String>>,
}

impl RecoveryFolder {
    fn candidates(&self) -> Vec<(PathBuf, PathBuf)> {
        match &self.configured {
            Some(dir) => vec![(dir.clone(), dir.join("tenant-plane-recovery"))],
            None => [&self.scratch_dir, &self.fallback_dir]
                .into_iter()
                .map(|parent| (parent.clone(), parent.join("recovery")))
                .collect(),
        }
    }

    /// This process's folder in it, the folder made and opened (swept)
    /// on first use.
    pub fn scratch(&self, pgbackrest: &PgBackRest) -> Result<&crate::backup::Scratch, String> {
        self.opened
            .get_or_init(|| {
                let owner = pgbackrest.owner();
                let (parent, root) = self
                    .candidates()
                    .into_iter()
                    .find(|(parent, _)| {
                        std::fs::create_dir_all(parent).is_ok()
                            && first_blocker(owner, parent).is_none()
                    })
                    .ok_or_else(|| {
                        "the postgres user cannot reach a recovery folder; set backup.recovery_dir to one it can".to_string()
                    })?;
                let scratch = crate::backup::Scratch::open(&root)
                    .map_err(|e| format!("{}: {e}", root.display()))?;
                pgbackrest.make_owned_dir(&root).map_err(|e| e.to_string())?;
                tracing::debug!(folder = %parent.display(), "scratch clusters go here");
                Ok(scratch)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Stops the scratch clusters of processes that died, in every folder
    /// this one may have used, so that their sweep can remove them.
    fn stop_leftovers(&self, binaries: &PgBinaries) {
        for (_, root) in self.candidates() {
            if Path::new(&root).is_dir() {
                for dead in crate::backup::dead_scratch_folders(&root) {
                    crate::wal_archive::stop_clusters_under(&dead, binaries);
                }
                crate::backup::sweep_scratch(&root);
            }
        }
    }
}

/// The tools, or `None` (said in the log) when this machine lacks one:
/// restores to a time then answer `no_wal_archive`.
pub fn pitr_tools(settings: &Settings, embedded: Option<EmbeddedArchive>) -> Option<PitrTools> {
    let pgbackrest = match &embedded {
        Some(archive) => archive.pgbackrest.clone(),
        None => match PgBackRest::locate() {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, "restores to a time are off");
                return None;
            }
        },
    };
    let binaries = match PgBinaries::locate(settings.embedded.bin_dir.as_deref()) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "restores to a time are off: no PostgreSQL server programs for a scratch cluster");
            return None;
        }
    };
    let recovery = RecoveryFolder {
        configured: settings.backup.recovery_dir.clone(),
        scratch_dir: settings.scratch_dir(),
        fallback_dir: settings.embedded.fallback_dir.clone(),
        opened: OnceLock::new(),
    };
    // A killed process's scratch clusters may still run: stopped first.
    recovery.stop_leftovers(&binaries);
    let days = settings.backup.full_every_days;
    let hours = settings.backup.diff_every_hours;
    Some(PitrTools {
        pgbackrest,
        binaries,
        recovery,
        embedded,
        full_every: (days > 0).then(|| std::time::Duration::from_secs(u64::from(days) * 86_400)),
        diff_every: (hours > 0).then(|| std::time::Duration::from_secs(u64::from(hours) * 3600)),
    })
}
