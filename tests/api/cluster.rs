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
            sweep_finished_runs(&server);
            server
        }
        Err(_) => start_shared_cluster(),
    })
}

/// On a server that outlives the test runs, drops what finished runs left:
/// their catalogs (`tp_test_<pid>_…` whose process is gone and to which no
/// one is connected) and the tenant databases and roles those catalogs list.
/// A throwaway cluster needs none of this: it is removed whole.
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

async fn sweep(server: &TestServer) {
    let admin = server.connect("postgres").await;
    let idle_catalogs: Vec<String> = admin
        .query(
            "SELECT datname FROM pg_database d WHERE datname ~ '^tp_test_[0-9]+_'
                AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (mut catalogs, mut databases) = (0, 0);
    for catalog in idle_catalogs {
        let pid = catalog
            .split('_')
            .nth(2)
            .and_then(|p| p.parse::<i32>().ok());
        let running = pid.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        });
        if running {
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
    let cluster = start_cluster_in(root.clone());
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

    /// The DSN an operator would register this server with.
    pub fn admin_dsn(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.server.port
        )
    }
}

pub fn start_extra() -> ExtraCluster {
    crate::timing::share();
    let dir = tempfile::Builder::new()
        .prefix("tenant-plane-extra-")
        .tempdir()
        .expect("temp dir");
    let cluster = start_cluster_in(dir.path().to_path_buf());
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
    }
}

fn start_cluster_in(root: PathBuf) -> LocalCluster {
    let binaries = PgBinaries::locate(None)
        .expect("PostgreSQL server binaries (run scripts/test.sh, which installs them)");
    if let Some((uid, gid)) = tenant_plane::local_pg::postgres_owner().unwrap() {
        nix::unistd::chown(&root, Some(uid), Some(gid)).unwrap();
    }
    LocalCluster::start(test_cluster_options(root), binaries).expect("start test cluster")
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
