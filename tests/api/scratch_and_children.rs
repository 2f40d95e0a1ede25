//! Plaintext and secrets that must not outlive their use: the scratch
//! folder (`backup.scratch_dir`) swept at start-up of what killed
//! processes left, and PostgreSQL's own processes started without the
//! service's environment.

use serde_json::json;
use tenant_plane::backup::SCRATCH_PREFIX;

use crate::helpers::spawn_app;
use crate::kit::binary::{command, serve, terminate};
use crate::kit::cli::cli_env;

/// When process `pid` started (`/proc`, field 22), as the scratch folder's
/// name records it.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[tokio::test]
async fn plaintext_dumps_a_killed_process_left_are_swept_at_start_up_and_a_live_ones_are_kept() {
    let app = spawn_app().await;
    let t = app.create_tenant("swept", json!({})).await;
    let tid = t["id"].as_str().unwrap();
    let scratch = tempfile::tempdir().unwrap();

    // A process killed mid-backup: its folder and dump stay behind.
    let mut killed = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let killed_pid = killed.id();
    let dead = scratch.path().join(format!(
        "{SCRATCH_PREFIX}{killed_pid}-{}",
        start_time(killed_pid)
    ));
    killed.kill().unwrap();
    killed.wait().unwrap();
    // A process still at work.
    let mut working = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let live = scratch.path().join(format!(
        "{SCRATCH_PREFIX}{}-{}",
        working.id(),
        start_time(working.id())
    ));
    for dir in [&dead, &live] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(".tenant-dump-abc"), "plaintext rows").unwrap();
    }

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("swept.tpbackup");
    let scratch_dir = scratch.path().to_str().unwrap();
    let (code, _, stderr) = cli_env(
        &app,
        &["backup", "--tenant", tid, "--out", file.to_str().unwrap()],
        &[("TENANT_PLANE_BACKUP_SCRATCH_DIR", scratch_dir)],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(file.exists());
    assert!(!dead.exists(), "the killed process's dump is swept");
    assert!(
        live.join(".tenant-dump-abc").exists(),
        "a running process's dump is not"
    );
    // The backup's own dump went in its folder there, and left with it.
    let left: Vec<String> = walk(scratch.path())
        .into_iter()
        .filter(|p| !p.starts_with(&live))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        left.iter()
            .all(|p| !p.contains(".tenant-dump-") && !p.contains("tenant-restore-")),
        "{left:?}"
    );

    // A restore sweeps too.
    working.kill().unwrap();
    working.wait().unwrap();
    ok_suspend(&app, tid).await;
    let (code, _, stderr) = cli_env(
        &app,
        &["restore", "--file", file.to_str().unwrap()],
        &[("TENANT_PLANE_BACKUP_SCRATCH_DIR", scratch_dir)],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!live.exists(), "its process ended, so its folder went");
}

async fn ok_suspend(app: &crate::helpers::TestApp, tid: &str) {
    let response = app
        .admin(
            reqwest::Method::POST,
            &format!("/v1/tenants/{tid}/suspend"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn the_embedded_postgres_server_runs_without_the_services_secrets_in_its_environment() {
    let data_dir = crate::kit::binary::open_folder();
    let mut cmd = command();
    cmd.env("TENANT_PLANE_DATA_DIR", data_dir.path())
        .env("TENANT_PLANE_MASTER_KEY", crate::helpers::MASTER_KEY)
        .env("TENANT_PLANE_JWT_SECRET", crate::helpers::JWT_SECRET)
        .env("AWS_SECRET_ACCESS_KEY", "marker-aws-secret")
        .env("AWS_ACCESS_KEY_ID", "marker-aws-id");
    let mut serving = serve(&mut cmd).await;

    let link = data_dir.path().join("cluster");
    let pgdata = if link.is_symlink() {
        link.join("postgres")
    } else {
        data_dir.path().join("postgres")
    };
    let pid_file = std::fs::read_to_string(pgdata.join("postmaster.pid")).unwrap();
    let pid: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(!names.is_empty());
    for var in &names {
        assert!(
            !var.starts_with("TENANT_PLANE_")
                && !var.starts_with("AWS_")
                && !var.contains("marker-"),
            "the postmaster inherited {var}"
        );
    }
    // Serving, so its shutdown is the clean one.
    let health = reqwest::get(format!("{}/healthz", serving.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    terminate(&mut serving.child).await;
}
