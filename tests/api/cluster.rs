//! Real PostgreSQL for the tests: one throwaway cluster per test binary, made
//! from the local server binaries, or the server named by
//! `TENANT_PLANE_TEST_DATABASE_URL`. Tests that stop a server start their own.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use secrecy::{ExposeSecret, SecretString};
use tenant_plane::local_pg::{ClusterAuth, ClusterOptions, LocalCluster, PgBinaries};

/// Where a test server lives and how to reach it as a superuser.
#[derive(Clone)]
pub struct TestServer {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

impl TestServer {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A key/value DSN for `dbname` as the superuser.
    pub fn url(&self, dbname: &str) -> SecretString {
        let mut dsn = format!(
            "host={} port={} user={} dbname={dbname}",
            self.host, self.port, self.user
        );
        if let Some(password) = &self.password {
            dsn.push_str(&format!(" password={password}"));
        }
        SecretString::from(dsn)
    }

    /// A connection to `dbname` as `user` with `password`, or the error
    /// PostgreSQL answered.
    pub async fn connect_as(
        &self,
        dbname: &str,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(dbname);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// A superuser connection to `dbname`.
    pub async fn connect(&self, dbname: &str) -> tokio_postgres::Client {
        self.connect_checked(dbname).await.unwrap()
    }

    /// A superuser connection to `dbname`, or the error PostgreSQL answered.
    pub async fn connect_checked(
        &self,
        dbname: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let config = tokio_postgres::Config::from_str(self.url(dbname).expose_secret()).unwrap();
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
}

/// The cluster every test in this binary shares.
pub fn shared() -> &'static TestServer {
    crate::timing::share();
    static SHARED: OnceLock<TestServer> = OnceLock::new();
    SHARED.get_or_init(|| match std::env::var("TENANT_PLANE_TEST_DATABASE_URL") {
        Ok(url) => {
            let server = from_url(&url);
            hold_run_lock(&server);
            sweep_finished_runs(&server);
            server
        }
        Err(_) => start_shared_cluster(),
    })
}

/// This run's id. Its catalogs are named `tp_test_<run>_…`, and on a server
/// that outlives the runs it holds an advisory lock keyed by it while it
/// lasts, so that any other run, from any machine, can tell a finished
/// run's leftovers from a live run's.
pub fn run_id() -> u32 {
    static RUN: OnceLock<u32> = OnceLock::new();
    *RUN.get_or_init(|| {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    })
}

/// A fresh catalog database name for this run; `tag` says what it is for.
pub fn catalog_name(tag: &str) -> String {
    format!(
        "tp_test_{:08x}_{tag}{}",
        run_id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The advisory lock class of test runs ("tprn").
const RUN_LOCK_CLASS: i32 = 0x7470_726e;

/// Takes this run's lock on a session kept open until the process exits.
fn hold_run_lock(server: &TestServer) {
    let server = server.clone();
    let (taken, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let session = server.connect("postgres").await;
                session
                    .execute(
                        "SELECT pg_advisory_lock($1, $2)",
                        &[&RUN_LOCK_CLASS, &(run_id() as i32)],
                    )
                    .await
                    .unwrap();
                taken.send(()).unwrap();
                // The session, and so the lock, lives as long as the run.
                std::future::pending::<()>().await;
            })
    });
    wait.recv().expect("take the test run's lock");
}

/// On a server that outlives the test runs, drops what finished runs left:
/// catalogs of runs whose lock is free, and the tenant databases and roles
/// those catalogs list. A throwaway cluster needs none of this: it is
/// removed whole.
fn sweep_finished_runs(server: &TestServer) {
    let server = server.clone();
    // Its own runtime: the caller may be inside one, which cannot block.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(sweep(&server))
    })
    .join()
    .expect("sweep the test server");
}

/// Whether the run that named a catalog has finished: its lock is free.
async fn finished(admin: &tokio_postgres::Client, catalog: &str) -> bool {
    let Some(run) = catalog
        .split('_')
        .nth(2)
        .and_then(|r| u32::from_str_radix(r, 16).ok())
    else {
        return false;
    };
    if run == run_id() {
        return false;
    }
    let free: bool = admin
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&RUN_LOCK_CLASS, &(run as i32)],
        )
        .await
        .unwrap()
        .get(0);
    if free {
        admin
            .execute(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&RUN_LOCK_CLASS, &(run as i32)],
            )
            .await
            .unwrap();
    }
    free
}

async fn sweep(server: &TestServer) {
    let admin = server.connect("postgres").await;
    let candidates: Vec<String> = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname ~ '^tp_test_[0-9a-f]{8}_'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (mut catalogs, mut databases) = (0, 0);
    for catalog in candidates {
        if !finished(&admin, &catalog).await {
            continue;
        }
        let tenants: Vec<uuid::Uuid> = match server.connect_checked(&catalog).await {
            Ok(db) => db
                .query("SELECT id FROM tenants", &[])
                .await
                .map(|rows| rows.iter().map(|r| r.get(0)).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        for id in tenants {
            let name = tenant_plane::domain::DbName::for_tenant(id.into());
            let q = tenant_plane::sql::quote_ident(name.as_str());
            for statement in [
                format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"),
                format!("DROP ROLE IF EXISTS {q}"),
            ] {
                if let Err(e) = admin.batch_execute(&statement).await {
                    eprintln!("sweeping {catalog}: {statement}: {e}");
                }
            }
            databases += 1;
        }
        let q = tenant_plane::sql::quote_ident(&catalog);
        match admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"))
            .await
        {
            Ok(()) => catalogs += 1,
            Err(e) => eprintln!("sweeping {catalog}: {e}"),
        }
    }
    if catalogs > 0 {
        eprintln!("swept {catalogs} catalogs and {databases} tenants that finished test runs left");
    }
}

fn from_url(url: &str) -> TestServer {
    let config = tokio_postgres::Config::from_str(url)
        .expect("TENANT_PLANE_TEST_DATABASE_URL is not a PostgreSQL URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    TestServer {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        user: config.get_user().unwrap_or("postgres").to_string(),
        password: config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    }
}

fn start_shared_cluster() -> TestServer {
    let root = tempfile::Builder::new()
        .prefix("tenant-plane-test-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let cluster = start_cluster_in(root.clone(), Vec::new());
    let server = TestServer {
        host: "127.0.0.1".into(),
        port: cluster.port(),
        user: "postgres".into(),
        password: None,
    };
    guard(&cluster, root);
    // The static never drops: the guardian below stops and removes the cluster.
    std::mem::forget(cluster);
    server
}

/// A cluster of its own, for a test that must see a whole server (doctor) or
/// stops one. Dropping it stops the server and removes its files.
pub struct ExtraCluster {
    pub server: TestServer,
    cluster: LocalCluster,
    dir: tempfile::TempDir,
}

impl ExtraCluster {
    /// Stops the server (fast shutdown: its sessions end at once).
    pub fn stop(&mut self) {
        self.cluster.stop().expect("stop the extra cluster");
    }

    /// Starts it again on the same port, with its data.
    pub fn restart(&mut self) {
        let mut options = test_cluster_options(self.dir.path().to_path_buf());
        options.port = self.server.port;
        let binaries = PgBinaries::locate(None).expect("PostgreSQL server binaries");
        self.cluster = LocalCluster::start(options, binaries).expect("restart the extra cluster");
    }

    /// Its data directory, and the uid and gid the server runs as (under root).
    pub fn pgdata_and_owner(&self) -> (PathBuf, Option<(nix::unistd::Uid, nix::unistd::Gid)>) {
        (self.cluster.pgdata().to_path_buf(), self.cluster.owner())
    }

    /// The DSN an operator would register this server with.
    pub fn admin_dsn(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.server.port
        )
    }
}

pub fn start_extra() -> ExtraCluster {
    start_extra_with(|_| Vec::new())
}

/// `start_extra`, with server settings made from the cluster's folder
/// (its `pgdata/` and `run/` go there) before it starts.
pub fn start_extra_with(settings: impl FnOnce(&std::path::Path) -> Vec<String>) -> ExtraCluster {
    crate::timing::share();
    let dir = tempfile::Builder::new()
        .prefix("tenant-plane-extra-")
        .tempdir()
        .expect("temp dir");
    let extra = settings(dir.path());
    let cluster = start_cluster_in(dir.path().to_path_buf(), extra);
    ExtraCluster {
        server: TestServer {
            host: "127.0.0.1".into(),
            port: cluster.port(),
            user: "postgres".into(),
            password: None,
        },
        cluster,
        dir,
    }
}

pub fn test_cluster_options(root: PathBuf) -> ClusterOptions {
    ClusterOptions {
        pgdata: root.join("pgdata"),
        run_dir: root.join("run"),
        port: 0,
        auth: ClusterAuth::Trust,
        durable: false,
        max_connections: 300,
        server_settings: Vec::new(),
    }
}

fn start_cluster_in(root: PathBuf, server_settings: Vec<String>) -> LocalCluster {
    let binaries = PgBinaries::locate(None)
        .expect("PostgreSQL server binaries (run scripts/test.sh, which installs them)");
    if let Some((uid, gid)) = tenant_plane::local_pg::postgres_owner().unwrap() {
        nix::unistd::chown(&root, Some(uid), Some(gid)).unwrap();
    }
    let options = ClusterOptions {
        server_settings,
        ..test_cluster_options(root)
    };
    LocalCluster::start(options, binaries).expect("start test cluster")
}

/// Starts a small process that outlives nothing: when this test binary exits,
/// however it exits, its end of the pipe closes, and the guardian stops the
/// cluster and removes its directory.
fn guard(cluster: &LocalCluster, root: PathBuf) {
    static GUARDIAN: Mutex<Option<ChildStdin>> = Mutex::new(None);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"cat >/dev/null; "$0" -D "$1" -m immediate -w stop >/dev/null 2>&1; rm -rf "$2""#)
        .arg(&cluster.binaries().pg_ctl)
        .arg(cluster.pgdata())
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((uid, gid)) = cluster.owner() {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    // Never waited on: it must outlive this process to clean up after it.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("spawn cluster guardian");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"").unwrap();
    *GUARDIAN.lock().unwrap() = Some(stdin);
}
