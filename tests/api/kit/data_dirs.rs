//! Where this run's apps keep their data directories, one per catalog (a
//! second life of a catalog finds its own), and their removal when the
//! run ends, however it ends.

use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The run's directory of data directories, removed when the run ends.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("tenant-plane-test-data-")
            .tempdir()
            .expect("temp dir")
            .keep();
        remove_at_exit(&root);
        root
    })
}

/// Removes `path` once this process has ended: a watcher process waits
/// for its pipe from this one to close.
fn remove_at_exit(path: &Path) {
    static WATCHERS: Mutex<Vec<ChildStdin>> = Mutex::new(Vec::new());
    // Never waited on: it must outlive this process to clean up after it.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"cat >/dev/null; rm -rf "$0""#)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a clean-up watcher");
    WATCHERS.lock().unwrap().push(child.stdin.take().unwrap());
}
