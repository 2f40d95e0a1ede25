//! Where plaintext copies of a tenant's database are kept while a backup,
//! a restore or a move needs them (`backup.scratch_dir`).
//!
//! Rules:
//! - Every process works in a folder of its own,
//!   `tenant-plane-scratch-<pid>-<start time>`, mode 0700; files in it
//!   carry the prefix of what made them (`.tenant-dump-`, `tenant-restore-`,
//!   `tenant-plane-move-`).
//! - A process that ends normally removes its files as it goes. One that
//!   was killed leaves them: at start-up (`Scratch::open`, from `serve` and
//!   every CLI command that reaches the catalog) the folders of processes
//!   that are no longer alive are removed. A folder's owner is alive when
//!   its pid is running and started at the recorded time (a reused pid
//!   started later).

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The start of every per-process folder's name.
pub const SCRATCH_PREFIX: &str = "tenant-plane-scratch-";

/// This process's scratch folder under a root.
#[derive(Debug, Clone)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Sweeps what dead processes left under `root`, then names this
    /// process's folder there (made on first use).
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        for swept in sweep(root) {
            tracing::warn!(
                folder = %swept.display(),
                "removed the scratch files of a process that is no longer running"
            );
        }
        Ok(Self::in_root(root))
    }

    /// This process's folder under `root`, without a sweep.
    pub fn in_root(root: &Path) -> Self {
        let pid = std::process::id();
        let start = crate::process::start_of(pid).unwrap_or(0);
        Self {
            dir: root.join(format!("{SCRATCH_PREFIX}{pid}-{start}")),
        }
    }

    /// This process's folder, made (mode 0700) if it is not there.
    pub fn dir(&self) -> io::Result<&Path> {
        if !self.dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)?;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(&self.dir)
    }
}

/// Removes the per-process folders under `root` whose process is gone;
/// returns them. Entries it cannot read or remove are left alone.
pub fn sweep(root: &Path) -> Vec<PathBuf> {
    dead_folders(root)
        .into_iter()
        .filter(|dir| std::fs::remove_dir_all(dir).is_ok())
        .collect()
}

/// The per-process folders under `root` whose process is gone (before a
/// sweep removes them: a caller may have to stop what runs there first).
pub fn dead_folders(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, start)) = name.to_str().and_then(owner_of) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || crate::process::alive(pid, start) {
            continue;
        }
        dead.push(entry.path());
    }
    dead
}

/// The pid and start time a folder name records.
fn owner_of(name: &str) -> Option<(u32, u64)> {
    let (pid, start) = name.strip_prefix(SCRATCH_PREFIX)?.split_once('-')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::start_of as process_start;

    #[test]
    fn the_folder_of_a_process_that_died_is_swept_and_a_live_ones_is_not() {
        let root = tempfile::tempdir().unwrap();
        // A process that has ended.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        let dead_start = process_start(dead_pid).unwrap_or(1);
        child.wait().unwrap();
        let dead = root
            .path()
            .join(format!("{SCRATCH_PREFIX}{dead_pid}-{dead_start}"));
        // A live process whose pid was once used by another (an older start).
        let live = Scratch::in_root(root.path());
        let reused = root.path().join(format!(
            "{SCRATCH_PREFIX}{}-{}",
            std::process::id(),
            process_start(std::process::id()).unwrap() - 1
        ));
        let other = root.path().join("not-ours");
        for dir in [&dead, &reused, live.dir().unwrap(), &other] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(".tenant-dump-x"), "plaintext rows").unwrap();
        }

        let opened = Scratch::open(root.path()).unwrap();

        assert!(!dead.exists(), "the dead process's dump is gone");
        assert!(
            !reused.exists(),
            "a reused pid does not keep a folder alive"
        );
        assert!(live.dir.join(".tenant-dump-x").exists(), "a live one stays");
        assert!(other.exists(), "what is not a scratch folder stays");
        assert_eq!(opened.dir, live.dir);
    }

    #[test]
    fn a_scratch_folder_is_private_to_its_user() {
        let root = tempfile::tempdir().unwrap();
        let scratch = Scratch::open(&root.path().join("deeper")).unwrap();
        let mode = std::fs::metadata(scratch.dir().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
