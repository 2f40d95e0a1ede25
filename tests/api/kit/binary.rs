//! Running the `tenant-plane` binary as a user would: a command with none of
//! the test environment's TENANT_PLANE_* variables, and `serve` as a child
//! process whose banner is read from its standard output.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_tenant-plane");

/// The binary with no TENANT_PLANE_* variables from the test environment.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("TENANT_PLANE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn").kill_on_drop(true);
    cmd
}

/// Runs a command to its end: exit code, standard output, standard error.
pub async fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command finished in time")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `serve`: the child, its base URL, and the token it printed.
pub struct Serving {
    pub child: Child,
    pub base: String,
    pub token: Option<String>,
}

/// Starts `serve` on `data_dir` on a free port.
pub async fn start_serve(data_dir: &Path) -> (Child, String, Option<String>) {
    let mut cmd = command();
    cmd.env("TENANT_PLANE_DATA_DIR", data_dir);
    let serving = serve(&mut cmd).await;
    (serving.child, serving.base, serving.token)
}

/// Starts `serve` from `cmd` (its directory and settings as the caller set
/// them) on a free port, and waits for its banner.
pub async fn serve(cmd: &mut Command) -> Serving {
    let mut child = cmd
        .arg("serve")
        .env("TENANT_PLANE_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    let mut token = None;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("tenant-plane listening on ") {
                base = Some(url.to_string());
            } else if let Some((_, t)) = line
                .strip_prefix("super_admin token (valid ")
                .and_then(|rest| rest.split_once("): "))
            {
                token = Some(t.to_string());
            } else if line.starts_with("try: curl") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), read)
        .await
        .expect("serve printed its banner");
    Serving {
        child,
        base: base.expect("a listening line"),
        token,
    }
}

/// SIGTERM, then the exit, which must be clean.
pub async fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("serve stopped after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A folder anyone may enter, for clusters the `postgres` user cannot keep
/// in a closed folder (the tests' stand-in for `/var/lib/tenant-plane`).
pub fn open_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
