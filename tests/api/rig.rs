//! A rig for crash tests: replicas of the service as child processes on one
//! catalog (with failpoints set through `FAILPOINTS`), the CLI as another
//! child, a second database server for moves, and the invariants every
//! crash must leave true.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tenant_plane::domain::TenantId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::cluster::{self, ExtraCluster, TestServer};
use crate::helpers::{sign, JWT_SECRET, MASTER_KEY};

mod invariants;

/// One catalog on the shared cluster (the catalog's own server holds the
/// tenants first) and a second server of its own, for moves.
pub struct Rig {
    pub server: TestServer,
    pub catalog: String,
    pub second: ExtraCluster,
    pub client: reqwest::Client,
    /// Settings every replica gets (e.g. a short stale limit).
    pub env: Vec<(String, String)>,
    /// The catalog's own cluster, when the rig has one (to restart it).
    pub catalog_cluster: Option<ExtraCluster>,
}

/// A replica: `tenant-plane serve` as a child process.
pub struct Replica {
    pub child: Child,
    pub base: String,
}

impl Rig {
    pub async fn new(tag: &str) -> Self {
        let second = tokio::task::spawn_blocking(cluster::start_extra)
            .await
            .unwrap();
        Self {
            server: cluster::shared().clone(),
            catalog: cluster::catalog_name(tag),
            second,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                // Below the server's 5 s keep-alive (see `helpers::spawn_app`).
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
            env: Vec::new(),
            catalog_cluster: None,
        }
    }

    /// A rig whose catalog (and first tenant server) is a cluster of its
    /// own, which the test may stop and start.
    pub async fn with_own_catalog(tag: &str) -> Self {
        let own = tokio::task::spawn_blocking(cluster::start_extra)
            .await
            .unwrap();
        let mut rig = Self::new(tag).await;
        rig.server = own.server.clone();
        rig.catalog = "tenant_plane".into();
        rig.catalog_cluster = Some(own);
        rig
    }

    /// Restarts the catalog's cluster (fast shutdown: every session ends).
    pub async fn restart_catalog(&mut self) {
        let mut own = self.catalog_cluster.take().expect("a catalog of its own");
        own = tokio::task::spawn_blocking(move || {
            own.stop();
            own.restart();
            own
        })
        .await
        .unwrap();
        self.catalog_cluster = Some(own);
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The binary with this rig's settings (and `failpoint`, if any).
    pub fn command(&self, failpoint: Option<(&str, &str)>) -> tokio::process::Command {
        let mut cmd = crate::kit::binary::command();
        // The replicas' own logs only with TEST_LOG; they crash on purpose.
        if std::env::var_os("TEST_LOG").is_none() {
            cmd.env("RUST_LOG", "off");
        }
        cmd.env_remove("RUST_BACKTRACE");
        cmd.env(
            "TENANT_PLANE_DATABASE_URL",
            self.server.url(&self.catalog).expose_secret(),
        )
        .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET)
        .env("TENANT_PLANE_MASTER_KEY", MASTER_KEY);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some((name, action)) = failpoint {
            // `kill` or `stop` every time it is reached, or a whole fail
            // expression (`1*return(stop)`: only the first time).
            let action = if action.contains("return(") {
                action.to_string()
            } else {
                format!("return({action})")
            };
            cmd.env("FAILPOINTS", format!("{name}={action}"));
        }
        cmd
    }

    /// Starts a replica; `failpoint` is (name, `kill` or `stop`).
    pub async fn replica(&self, failpoint: Option<(&str, &str)>) -> Replica {
        let mut cmd = self.command(failpoint);
        cmd.arg("serve")
            .env("TENANT_PLANE_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Generous: under a loaded 2-core machine a replica's start-up pass
        // may resume several operations other replicas left.
        let base = tokio::time::timeout(Duration::from_secs(180), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("tenant-plane listening on ") {
                    return url.to_string();
                }
            }
            panic!("serve exited before listening");
        })
        .await
        .expect("serve started");
        Replica { child, base }
    }

    /// Runs the CLI to its end (or its failpoint).
    pub async fn cli(
        &self,
        args: &[&str],
        failpoint: Option<(&str, &str)>,
    ) -> std::process::Output {
        let mut cmd = self.command(failpoint);
        cmd.args(args);
        // A backup or restore through the CLI amid the schedule's kills and
        // pauses can wait on locks a paused replica holds until it is taken
        // over; a hang is still caught.
        tokio::time::timeout(Duration::from_secs(300), cmd.output())
            .await
            .expect("the CLI finished")
            .unwrap()
    }

    /// Starts the CLI as a child and leaves it running (to pause it at its
    /// failpoint).
    pub fn cli_child(&self, args: &[&str], failpoint: Option<(&str, &str)>) -> Replica {
        let mut cmd = self.command(failpoint);
        cmd.args(args);
        Replica {
            child: cmd.spawn().unwrap(),
            base: String::new(),
        }
    }

    pub async fn catalog_db(&self) -> tokio_postgres::Client {
        self.server.connect(&self.catalog).await
    }

    /// Every database server the rig's tenants may live on.
    pub fn servers(&self) -> [&TestServer; 2] {
        [&self.server, &self.second.server]
    }

    pub async fn admin(
        &self,
        replica: &Replica,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", replica.base))
            .bearer_auth(admin_token());
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await
    }

    /// `method path` on `replica`, expecting `want`; returns the body.
    pub async fn ok(
        &self,
        replica: &Replica,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let response = self.admin(replica, method, path, body).await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, want, "{path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Creates a tenant with `agents` agents; returns its id.
    pub async fn tenant_with_agents(
        &self,
        replica: &Replica,
        slug: &str,
        agents: usize,
    ) -> TenantId {
        let t = self
            .ok(
                replica,
                Method::POST,
                "/v1/tenants",
                Some(json!({ "name": slug, "slug": slug })),
                201,
            )
            .await;
        let id: TenantId = t["id"].as_str().unwrap().parse().unwrap();
        let token = sign(tenant_plane::auth::Claims::new(
            "rig",
            tenant_plane::auth::Role::TenantAdmin,
            Some(id),
            None,
            Duration::from_secs(3600),
        ));
        for i in 0..agents {
            let response = self
                .client
                .post(format!("{}/v1/agents", replica.base))
                .bearer_auth(&token)
                .json(&json!({ "name": format!("agent {i}"), "type": "chat" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        }
        id
    }

    /// The id of the catalog's own server, as `replica` lists it.
    pub async fn catalog_server(&self, replica: &Replica) -> String {
        let servers = self
            .ok(replica, Method::GET, "/v1/servers", None, 200)
            .await;
        servers["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "catalog")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Registers the second server; returns its id.
    pub async fn register_second(&self, replica: &Replica) -> String {
        let server = self
            .ok(
                replica,
                Method::POST,
                "/v1/servers",
                Some(json!({ "name": "second", "dsn": self.second.admin_dsn() })),
                201,
            )
            .await;
        server["id"].as_str().unwrap().to_string()
    }

    /// Records every operation's move into a finished state, so a test can
    /// tell whether one finished twice. Test-only: a trigger in the catalog.
    pub async fn log_finishes(&self) {
        self.catalog_db()
            .await
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS test_finishes (op uuid, state text);
                 CREATE OR REPLACE FUNCTION test_log_finish() RETURNS trigger
                   LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.state IN ('succeeded', 'failed', 'cancelled') AND NEW.state IS DISTINCT FROM OLD.state THEN
                     INSERT INTO test_finishes VALUES (NEW.id, NEW.state);
                   END IF;
                   RETURN NEW;
                 END $$;
                 DROP TRIGGER IF EXISTS test_log_finish ON operations;
                 CREATE TRIGGER test_log_finish AFTER UPDATE ON operations
                   FOR EACH ROW EXECUTE FUNCTION test_log_finish();",
            )
            .await
            .unwrap();
    }

    /// Waits until no operation is unfinished.
    pub async fn settled(&self, within: Duration) -> Duration {
        let started = Instant::now();
        let catalog = self.catalog_db().await;
        loop {
            let unfinished: i64 = catalog
                .query_one(
                    "SELECT count(*) FROM operations WHERE state IN ('pending', 'queued', 'running')",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if unfinished == 0 {
                return started.elapsed();
            }
            let ops: Vec<String> = catalog
                .query(
                    "SELECT kind || ' ' || coalesce(step, '-') || ' gen ' || generation || ' ' || coalesce(error, '')
                       FROM operations WHERE state IN ('pending', 'queued', 'running')",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert!(
                started.elapsed() < within,
                "operations still unfinished after {within:?}: {ops:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn admin_token() -> String {
    sign(tenant_plane::auth::Claims::new(
        "rig",
        tenant_plane::auth::Role::SuperAdmin,
        None,
        None,
        Duration::from_secs(3600),
    ))
}

impl Replica {
    /// Waits until the process stopped itself (SIGSTOP at its failpoint).
    pub async fn stopped(&self, within: Duration) {
        let pid = self.child.id().unwrap();
        let started = Instant::now();
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The state follows the command name in parentheses.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            if state == Some("T") {
                return;
            }
            assert!(
                started.elapsed() < within,
                "the replica never reached its failpoint"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Waits for the process to end (it killed itself at its failpoint).
    pub async fn ended(&mut self, within: Duration) {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the replica ended")
            .unwrap();
    }

    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait().await;
    }
}
