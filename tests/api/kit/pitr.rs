//! Point-in-time restore through the real binary: pgBackRest found (or the
//! test skips, except where it is required), the embedded cluster reached
//! as its superuser, an operation followed to its end.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// Whether pgBackRest is here; `false` (the test skips, and says so) only
/// where a run does not require it (`TENANT_PLANE_TEST_PGBACKREST`).
pub fn pgbackrest_or_skip() -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("pgbackrest").is_file()))
        .unwrap_or(false)
        || Path::new("/usr/bin/pgbackrest").is_file();
    if found {
        return true;
    }
    assert!(
        std::env::var("TENANT_PLANE_TEST_PGBACKREST").as_deref() != Ok("required"),
        "pgBackRest is required in this run (TENANT_PLANE_TEST_PGBACKREST=required) but was not found"
    );
    eprintln!("skipped: pgBackRest is not installed (scripts/test.sh installs it where it can)");
    false
}

/// A session as the embedded cluster's superuser to `db`, from what the
/// data directory holds (the port in postmaster.pid, the password in secrets/).
pub async fn superuser(data_dir: &Path, db: &str) -> tokio_postgres::Client {
    let pid = std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")).unwrap();
    let port: u16 = pid.lines().nth(3).unwrap().trim().parse().unwrap();
    let password = std::fs::read_to_string(data_dir.join("secrets/postgres_password")).unwrap();
    let dsn = format!(
        "host=127.0.0.1 port={port} user=postgres password={} dbname={db}",
        password.trim()
    );
    let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Follows the operation at `location` until it ends; its last view.
pub async fn finished(base: &str, token: &str, location: &str) -> Value {
    let client = reqwest::Client::new();
    let follow = async {
        loop {
            let view: serde_json::Value = client
                .get(format!("{base}{location}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if !matches!(
                view["state"].as_str(),
                Some("running" | "pending" | "queued")
            ) {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(300), follow)
        .await
        .expect("the operation ended in time")
}

/// The tenant's recovery window once its archive holds a base backup.
pub async fn window_with_a_backup(base: &str, token: &str, tenant: &str) -> Value {
    let client = reqwest::Client::new();
    let wait = async {
        loop {
            let answer = client
                .get(format!("{base}/v1/tenants/{tenant}/recovery-window"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let view: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(status, 200, "{view}");
            if let Some(earliest) = view["earliest"].as_str() {
                // Times written from now on are inside the window.
                let earliest: chrono::DateTime<chrono::Utc> = earliest.parse().unwrap();
                while chrono::Utc::now() <= earliest {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                return view;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(180), wait)
        .await
        .expect("a base backup was taken in time")
}

/// `serve` on `data_dir` with WAL archiving into `backups` (a folder), its
/// scratch clusters in `recovery`, a reconciler pass a second, and
/// `FAILPOINTS` when given.
pub async fn archiving_serve(
    data_dir: &Path,
    backups: &Path,
    recovery: &Path,
    failpoints: Option<&str>,
) -> crate::kit::binary::Serving {
    let mut cmd = crate::kit::binary::command();
    cmd.env("TENANT_PLANE_DATA_DIR", data_dir)
        .env("TENANT_PLANE_BACKUP_LOCATION", backups)
        .env("TENANT_PLANE_BACKUP_ARCHIVE_TIMEOUT_SECS", "5")
        .env("TENANT_PLANE_BACKUP_RECOVERY_DIR", recovery)
        .env("TENANT_PLANE_RECONCILER_INTERVAL_SECS", "1");
    if let Some(points) = failpoints {
        cmd.env("FAILPOINTS", points);
    }
    crate::kit::binary::serve(&mut cmd).await
}

/// The scratch clusters' folders left under `recovery` (a backup loop's
/// short-lived `info-` folders aside), and whether a server still runs
/// from one.
pub fn scratch_left(recovery: &Path) -> (Vec<String>, bool) {
    let root = recovery.join("tenant-plane-recovery");
    let left = std::fs::read_dir(&root)
        .map(|entries| {
            entries
                .flatten()
                .flat_map(|process| {
                    std::fs::read_dir(process.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                })
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with("info-"))
                .collect()
        })
        .unwrap_or_default();
    // A server's command line names its data directory (a backup loop's
    // `pgbackrest info` names a config file there too, and is no server).
    let running = std::process::Command::new("pgrep")
        .arg("-f")
        .arg(format!("postgres -D {}", root.display()))
        .status()
        .is_ok_and(|s| s.success());
    (left, running)
}

/// A POST with the token: its status, its JSON and its `Location`.
pub async fn post(
    base: &str,
    token: &str,
    path: &str,
    body: Value,
) -> (u16, Value, Option<String>) {
    let answer = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let location = answer
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    (status, answer.json().await.unwrap_or(Value::Null), location)
}

/// The rows of the test's own `markers` table in a tenant's database.
pub async fn markers(client: &tokio_postgres::Client) -> Vec<i32> {
    client
        .query("SELECT n FROM markers ORDER BY n", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Makes the `markers` table and writes markers 0 to 3, one every half
/// second; returns T, a quarter second after marker 1 was written (a
/// restore to T keeps markers 0 and 1 and none after).
pub async fn four_markers(client: &tokio_postgres::Client) -> chrono::DateTime<chrono::Utc> {
    client
        .batch_execute("CREATE TABLE markers (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        .await
        .unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut t = None;
    for n in 0..4 {
        tick.tick().await;
        let row = client
            .query_one("INSERT INTO markers (n) VALUES ($1) RETURNING at", &[&n])
            .await
            .unwrap();
        if n == 1 {
            let at: chrono::DateTime<chrono::Utc> = row.get(0);
            t = Some(at + chrono::Duration::milliseconds(250));
        }
    }
    t.expect("marker 1 was written")
}

/// Hands `path` to the cluster's user, as an operator's set-up would.
pub fn give(path: &Path) {
    if let Some((uid, gid)) = tenant_plane::local_pg::postgres_owner().unwrap() {
        nix::unistd::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// Runs pgbackrest as the cluster's user, as the operator's own jobs do.
pub fn operator_pgbackrest(conf: &Path, stanza: &str, command: &str, args: &[String]) {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("pgbackrest");
    cmd.arg(format!("--config={}", conf.display()))
        .arg(format!("--stanza={stanza}"))
        .args(args)
        .arg(command);
    if let Some((uid, gid)) = tenant_plane::local_pg::postgres_owner().unwrap() {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pgbackrest {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
