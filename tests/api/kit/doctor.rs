//! The kit of the `doctor` tests that run the binary as an operator does:
//! an app whose catalog and tenants are on a server of their own, the
//! `doctor` command against it, a catalog "restored to an earlier point"
//! (a tenant's row forgotten), rows planted in a tenant database to see
//! them survive, and a process paused at a failpoint.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::process::Command;

use crate::cluster::{self, ExtraCluster};
use crate::helpers::{spawn_app_on, test_settings, TestApp, MASTER_KEY};
use crate::kit::binary;

pub const CATALOG: &str = "tenant_plane";

/// An app whose catalog and tenants are on a server of their own, so that
/// `doctor` sees only them.
pub async fn app_on_own_server() -> (ExtraCluster, TestApp) {
    let extra = tokio::task::spawn_blocking(cluster::start_extra)
        .await
        .unwrap();
    let (mut settings, _) = test_settings();
    settings.database_url = Some(extra.server.url(CATALOG));
    let app = spawn_app_on(settings, CATALOG.into(), extra.server.clone()).await;
    (extra, app)
}

/// `tenant-plane doctor <args>` against the app's catalog.
pub fn doctor(extra: &ExtraCluster, args: &[&str]) -> Command {
    let mut cmd = binary::command();
    cmd.arg("doctor")
        .args(args)
        .env(
            "TENANT_PLANE_DATABASE_URL",
            extra.server.url(CATALOG).expose_secret(),
        )
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY);
    cmd
}

pub async fn doctor_json(mut cmd: Command) -> Value {
    let (code, stdout, stderr) = binary::run(cmd.arg("--json")).await;
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e} (exit {code}): {stderr}"))
}

/// A row the test put in a tenant's database, to see it survive.
pub async fn plant_keepsake(extra: &ExtraCluster, database: &str) {
    extra
        .server
        .connect(database)
        .await
        .batch_execute("CREATE TABLE keepsake (note text); INSERT INTO keepsake VALUES ('kept')")
        .await
        .unwrap();
}

pub async fn keepsake(extra: &ExtraCluster, database: &str) -> String {
    extra
        .server
        .connect(database)
        .await
        .query_one("SELECT note FROM keepsake", &[])
        .await
        .unwrap()
        .get(0)
}

/// The catalog restored to a point before `tenant` was made: its row and
/// every row that references it are gone. The row is saved in
/// `forgotten_tenants` first, to bring it back later.
pub async fn forget(app: &TestApp, tenant: &str) {
    let catalog = app.catalog_db().await;
    let id: uuid::Uuid = tenant.parse().unwrap();
    catalog
        .execute(
            "CREATE TABLE IF NOT EXISTS forgotten_tenants AS SELECT * FROM tenants WITH NO DATA",
            &[],
        )
        .await
        .unwrap();
    catalog
        .execute(
            "INSERT INTO forgotten_tenants SELECT * FROM tenants WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let references = catalog
        .query(
            "SELECT c.conrelid::regclass::text, a.attname::text
               FROM pg_constraint c
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
              WHERE c.contype = 'f' AND c.confrelid = 'tenants'::regclass",
            &[],
        )
        .await
        .unwrap();
    for row in references {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        catalog
            .execute(&format!("DELETE FROM {table} WHERE {column} = $1"), &[&id])
            .await
            .unwrap();
    }
    let gone = catalog
        .execute("DELETE FROM tenants WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(gone, 1);
}

pub async fn databases(extra: &ExtraCluster) -> Vec<String> {
    extra
        .server
        .connect("postgres")
        .await
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'ai_care_tenant_%'
                AND datname <> 'ai_care_tenant_template' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

pub async fn role_exists(extra: &ExtraCluster, role: &str) -> bool {
    extra
        .server
        .connect("postgres")
        .await
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .unwrap()
        .is_some()
}

pub fn lines(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {report}"))
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// The keepsake in a quarantined database, which is closed to every
/// session: opened for the read, then closed again.
pub async fn parked_keepsake(extra: &ExtraCluster, parked: &str) -> String {
    let admin = extra.server.connect("postgres").await;
    let q = format!("\"{parked}\"");
    admin
        .batch_execute(&format!("ALTER DATABASE {q} WITH ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let note = keepsake(extra, parked).await;
    admin
        .batch_execute(&format!("ALTER DATABASE {q} WITH ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    note
}

/// Brings a forgotten tenant's row back (a newer catalog restored).
pub async fn remember(app: &TestApp, tenant: &str) {
    app.catalog_db()
        .await
        .execute(
            "INSERT INTO tenants SELECT * FROM forgotten_tenants WHERE id = $1",
            &[&tenant.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
}

/// Spawns `cmd` with its output piped and waits until it stops itself at
/// a `return(stop)` failpoint; returns the child and its pid.
pub async fn spawn_until_stopped(mut cmd: Command) -> (tokio::process::Child, u32) {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let started = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name in parentheses.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        if state == Some("T") {
            return (child, pid);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the process never reached its failpoint"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Continues a stopped process and returns its JSON report.
pub async fn continue_to_report(child: tokio::process::Child, pid: u32) -> (i32, Value) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("doctor finished")
        .unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}
