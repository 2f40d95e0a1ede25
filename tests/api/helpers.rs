//! `spawn_app()`: the real server on port 0 against a real PostgreSQL, with a
//! catalog database of its own, plus typed request helpers.

use std::sync::Once;
use std::time::Duration;

use secrecy::SecretString;
use tenant_plane::auth::{Claims, JwtKeys, Role};
use tenant_plane::config::{LogFormat, Settings};
use tenant_plane::domain::TenantId;
use tenant_plane::startup::Application;

use crate::cluster::{self, TestServer};

/// The HS256 secret every test app signs with.
pub const JWT_SECRET: &str = "tenant-plane-test-secret-0123456789abcdef";

/// The master key every test app seals secrets with.
pub const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// Name of this app's own catalog database on the test server.
    pub catalog_db: String,
    pub server: TestServer,
    /// The PostgreSQL-protocol gateway's port (on in every test app).
    pub gateway_port: Option<u16>,
    state: actix_web::web::Data<tenant_plane::api::AppState>,
    /// The running service, until `stop`.
    serving: std::sync::Mutex<
        Option<(
            actix_web::dev::ServerHandle,
            tokio::task::JoinHandle<std::io::Result<()>>,
        )>,
    >,
}

/// Logs only when `TEST_LOG` is set, so failures stay readable.
fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tenant_plane::telemetry::init(LogFormat::Text, "info");
        }
    });
}

/// Settings for a test app against the shared cluster, with a fresh catalog.
pub fn test_settings() -> (Settings, String) {
    let catalog_db = cluster::catalog_name("");
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(cluster::shared().url(&catalog_db)),
        jwt_secret: Some(SecretString::from(JWT_SECRET)),
        master_key: Some(SecretString::from(MASTER_KEY)),
        data_dir: crate::kit::data_dirs::root().join(&catalog_db),
        ..Settings::default()
    };
    settings.http.workers = 1;
    settings.http.max_body_bytes = 64 * 1024;
    settings.http.shutdown_timeout_secs = 1;
    settings.gateway.listen = Some("127.0.0.1:0".into());
    (settings, catalog_db)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like `spawn_app`, after `customize` has changed the settings.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, catalog_db) = test_settings();
    customize(&mut settings);
    spawn_app_on(settings, catalog_db, cluster::shared().clone()).await
}

/// An app without rate limits, for tests whose clients send as fast as they
/// can to exercise something else (a move, an outage). There a 429 would only
/// measure the test's own load against the tenant's quota, which depends on
/// how fast the machine is; data_routing and noisy_neighbour test the limits.
pub async fn spawn_app_without_rate_limits() -> TestApp {
    spawn_app_with(|s| s.router.rate_limit_scale = 0.0).await
}

/// Starts an app with exactly these settings (e.g. a second life of a catalog).
pub async fn spawn_app_on(settings: Settings, catalog_db: String, server: TestServer) -> TestApp {
    init_logging();
    let app = Application::build(settings)
        .await
        .expect("build the application");
    let port = app.port();
    let gateway_port = app.gateway_port();
    let state = app.state();
    let handle = app.server_handle();
    let running = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // The server closes a connection idle for 5 s (actix's default
            // keep-alive); one reused just as it closes fails the request
            // (`IncompleteMessage`), so the client lets go of idle ones first.
            .pool_idle_timeout(Duration::from_secs(2))
            .user_agent("tenant-plane-tests")
            .build()
            .unwrap(),
        catalog_db,
        server,
        gateway_port,
        state,
        serving: std::sync::Mutex::new(Some((handle, running))),
    }
}

impl TestApp {
    /// Stops the service as a stop signal would, and waits until its
    /// background work (the reconciler among it) has ended.
    pub async fn stop(&self) {
        let serving = self.serving.lock().unwrap().take();
        if let Some((handle, running)) = serving {
            handle.stop(true).await;
            let _ = running.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A token signed with the test secret.
    pub fn token(
        &self,
        role: Role,
        tenant: Option<TenantId>,
        subtenant: Option<TenantId>,
    ) -> String {
        sign(Claims::new(
            "test-user",
            role,
            tenant,
            subtenant,
            Duration::from_secs(600),
        ))
    }

    pub fn super_admin_token(&self) -> String {
        self.token(Role::SuperAdmin, None, None)
    }

    /// `method path` as super_admin, with an optional JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(self.super_admin_token());
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    /// Follows a long action's answer to its end: it must be 202 with
    /// `Location: /v1/operations/{id}` and the operation as the body; polls
    /// the operation until it finished (succeeded, failed or cancelled) and
    /// returns it as last read.
    pub async fn follow(&self, response: reqwest::Response) -> serde_json::Value {
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(status, 202, "a long action answers 202: {body}");
        let location = location.expect("a 202 names its operation in Location");
        assert_eq!(
            location,
            format!("/v1/operations/{}", body["id"].as_str().unwrap())
        );
        self.wait_operation(&location).await
    }

    /// Soft-deletes tenant `id` (200), then purges it, following the
    /// purge's operation to its end; returns the operation.
    pub async fn delete_and_purge(&self, id: &str) -> serde_json::Value {
        let deleted = self
            .admin(reqwest::Method::DELETE, &format!("/v1/tenants/{id}"), None)
            .await;
        assert_eq!(deleted.status(), 200, "{}", deleted.text().await.unwrap());
        self.follow(
            self.admin(
                reqwest::Method::DELETE,
                &format!("/v1/tenants/{id}?purge=true"),
                None,
            )
            .await,
        )
        .await
    }

    /// Polls `/v1/operations/{id}` (given as its path) until it finished.
    pub async fn wait_operation(&self, location: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let response = self.admin(reqwest::Method::GET, location, None).await;
            assert_eq!(response.status(), 200);
            let op: serde_json::Value = response.json().await.unwrap();
            let state = op["state"].as_str().unwrap().to_string();
            // A failure's code is recorded with its state, in one write.
            let settled = matches!(state.as_str(), "succeeded" | "cancelled" | "failed");
            if settled {
                return op;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the operation never finished: {op}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Creates a tenant as super_admin and returns its JSON; panics unless 201.
    pub async fn create_tenant(
        &self,
        slug: &str,
        settings: serde_json::Value,
    ) -> serde_json::Value {
        let response = self
            .admin(
                reqwest::Method::POST,
                "/v1/tenants",
                Some(serde_json::json!({ "name": format!("Tenant {slug}"), "slug": slug, "settings": settings })),
            )
            .await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    /// The running app's shared state (library services).
    pub async fn state(&self) -> actix_web::web::Data<tenant_plane::api::AppState> {
        self.state.clone()
    }

    /// Creates a tenant with default settings; returns its id and database.
    pub async fn create_tenant_named(&self, slug: &str) -> (String, String) {
        let body = self.create_tenant(slug, serde_json::json!({})).await;
        (
            body["id"].as_str().unwrap().to_string(),
            body["database"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a subtenant as super_admin and returns its JSON; panics unless 201.
    pub async fn create_subtenant(&self, parent: &str, slug: &str) -> serde_json::Value {
        let response = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/tenants/{parent}/subtenants"),
                Some(serde_json::json!({ "name": format!("Sub {slug}"), "slug": slug })),
            )
            .await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    /// One `bigint` from the catalog, e.g. a `count(*)`.
    pub async fn catalog_count(&self, sql: &str) -> i64 {
        self.catalog_db()
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Operations that have not finished; zero once every request returned.
    pub async fn unfinished_operations(&self) -> i64 {
        self.catalog_count("SELECT count(*) FROM operations WHERE state IN ('pending', 'running')")
            .await
    }

    /// A superuser connection to this app's catalog database.
    /// The denial counts written so far (after a flush of this app's
    /// pending ones): (route, reason, tenant id or "", count).
    pub async fn denials(&self) -> Vec<(String, String, String, i64)> {
        self.state().await.denials().flush().await.unwrap();
        self.catalog_db()
            .await
            .query(
                "SELECT route, reason,
                        CASE WHEN tenant_id = '00000000-0000-0000-0000-000000000000' THEN ''
                             ELSE tenant_id::text END,
                        sum(count)::bigint
                   FROM denials GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    pub async fn catalog_db(&self) -> tokio_postgres::Client {
        self.server.connect(&self.catalog_db).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request")
    }
}

/// An owner no process is: nobody holds its lock, as after its process
/// died. Operations written under it are taken over at once.
pub fn dead_owner() -> tenant_plane::catalog::Owner {
    tenant_plane::catalog::Owner {
        id: uuid::Uuid::now_v7(),
        key: (rand::random::<u32>() >> 1).max(1) as i32,
    }
}

pub fn sign(claims: Claims) -> String {
    JwtKeys::hs256(&SecretString::from(JWT_SECRET))
        .unwrap()
        .sign(&claims)
        .unwrap()
}

/// The error envelope of a response, checked for shape.
pub async fn envelope(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "status {status}: content-type {content_type:?}"
    );
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("no `error` in {body}"));
    let code = error["code"].as_str().expect("error.code").to_string();
    let message = error["message"]
        .as_str()
        .expect("error.message")
        .to_string();
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "envelope has only `error`: {body}"
    );
    (status, code, message)
}
