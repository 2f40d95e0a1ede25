//! Who a local cluster runs as (`postgres`, when we are root: PostgreSQL
//! refuses root), and whether that user can reach a directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Gid, Uid, User};

use super::{child_env, LocalPgError, SUPERUSER};

/// When we run as root, the uid and gid of `postgres`; PostgreSQL refuses root.
pub fn postgres_owner() -> Result<Option<(Uid, Gid)>, LocalPgError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name(SUPERUSER) {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        _ => Err(LocalPgError::NoPostgresUser),
    }
}

/// The first directory on the way to `dir` (itself included) that `owner`
/// may not enter, or `None` when it can reach `dir` (always, when we are not
/// root). It asks the system as that user, so ACLs and groups count.
pub fn first_blocker(owner: Option<(Uid, Gid)>, dir: &Path) -> Option<PathBuf> {
    let (uid, gid) = owner?;
    let enters = |path: &Path| {
        use std::os::unix::process::CommandExt;
        Command::new("/bin/sh")
            .args(["-c", "cd -- \"$1\"", "sh"])
            .arg(path)
            .uid(uid.as_raw())
            .gid(gid.as_raw())
            .env_clear()
            .envs(child_env())
            .current_dir("/")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if enters(dir) {
        return None;
    }
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .find(|p| !enters(p))
        .map(Path::to_path_buf)
}
