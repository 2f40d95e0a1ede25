//! A real OpenID provider for the single sign-on tests: the certified
//! `oidc-provider` from npm, run by `tests/oidc/provider.mjs` on 127.0.0.1
//! (`scripts/test.sh` installs it with `npm ci`). Each provider has its own
//! signing key, and hands out tokens for made-up users two ways: JWT
//! access tokens by the client-credentials grant (a client per user,
//! carrying that user's claims), and ID tokens by its own login form (the
//! browser test).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// Every client's secret (the provider is a test's own).
pub const CLIENT_SECRET: &str = "test-client-secret-0123456789abcdef";

pub struct OidcProvider {
    child: Child,
    pub port: u16,
    scheme: &'static str,
    /// The CA a test's own requests trust, over HTTPS.
    ca_pem: Option<String>,
    config: PathBuf,
    keys: PathBuf,
    _dir: tempfile::TempDir,
}

fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// A user as a client: its `client_id` is the user's `sub`, and its tokens
/// carry `claims`.
pub fn user(name: &str, claims: Value) -> Value {
    json!({ "client_id": name, "client_secret": CLIENT_SECRET, "claims": claims })
}

/// The console's client, sending browsers back to `redirect_uri`.
pub fn console_client(client_id: &str, redirect_uri: &str) -> Value {
    json!({ "client_id": client_id, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri] })
}

impl OidcProvider {
    /// Starts a provider with these clients and login accounts
    /// (`{"id": {claims}}`), on a free port.
    pub fn start(clients: Vec<Value>, accounts: Value) -> Self {
        Self::start_with(clients, accounts, None)
    }

    /// Over HTTPS, with a certificate for 127.0.0.1 that `ca` signs.
    pub fn start_tls(clients: Vec<Value>, ca: &crate::kit::ca::TestCa) -> Self {
        let mut provider = Self::start_with(clients, json!({}), Some(ca.server_cert("127.0.0.1")));
        provider.ca_pem = Some(ca.pem.clone());
        provider
    }

    fn start_with(clients: Vec<Value>, accounts: Value, tls: Option<(String, String)>) -> Self {
        assert!(
            oidc_dir().join("node_modules/oidc-provider").is_dir(),
            "the test OpenID provider is not installed: scripts/test.sh installs it (npm ci --prefix tests/oidc)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        let keys = dir.path().join("keys.json");
        let mut body = json!({ "port": 0, "keys": keys, "clients": clients, "accounts": accounts });
        if let Some((cert, key)) = &tls {
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert).unwrap();
            std::fs::write(&key_path, key).unwrap();
            body["tls"] = json!({ "cert": cert_path, "key": key_path });
        }
        std::fs::write(&config, body.to_string()).unwrap();
        let (child, port) = spawn(&config);
        Self {
            child,
            port,
            scheme: if tls.is_some() { "https" } else { "http" },
            ca_pem: None,
            config,
            keys,
            _dir: dir,
        }
    }

    pub fn issuer(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Stops the provider and starts it again on the same port with a new
    /// signing key (and without the old one): a key rotation.
    pub fn rotate_key(&mut self) {
        self.stop();
        std::fs::remove_file(&self.keys).unwrap();
        let mut body: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.config).unwrap()).unwrap();
        body["port"] = self.port.into();
        std::fs::write(&self.config, body.to_string()).unwrap();
        let (child, port) = spawn(&self.config);
        assert_eq!(port, self.port);
        self.child = child;
    }

    /// Stops the provider (it cannot be reached until `rotate_key`).
    pub fn stop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }

    /// A JWT access token for the user `name` (see `user`).
    pub async fn token(&self, name: &str) -> String {
        let client = self.client();
        let response = client
            .post(format!("{}/token", self.issuer()))
            .basic_auth(name, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "api"),
                ("resource", "urn:tenant-plane"),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "the provider gave no token: {body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// A client for the test's own requests, trusting the provider's CA.
    fn client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = &self.ca_pem {
            builder = builder
                .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    /// How many times the provider's JWKS has been fetched.
    pub async fn jwks_fetches(&self) -> u64 {
        let client = self.client();
        let body: Value = client
            .get(format!("{}/test/jwks-fetches", self.issuer()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["fetches"].as_u64().unwrap()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a provider may take to print `listening <port>`.
const START_WAIT: Duration = Duration::from_secs(120);

/// Runs the provider and waits for its `listening <port>` line.
fn spawn(config: &std::path::Path) -> (Child, u16) {
    let mut child = Command::new("node")
        .process_group(0)
        .arg(oidc_dir().join("provider.mjs"))
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(config.with_extension("stderr")).unwrap())
        .spawn()
        .expect("start node (Node.js 20 or later)");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("listening ") {
                let _ = tx.send(port.trim().parse::<u16>().unwrap());
            }
        }
    });
    // Generous: a new provider makes an RSA key (a search for primes, whose
    // time has a long tail), and on two cores busy with the suite's other
    // clusters one start once took longer than 30 s.
    let Ok(port) = rx.recv_timeout(START_WAIT) else {
        let exited = child.try_wait();
        let _ = child.kill();
        let stderr = std::fs::read_to_string(config.with_extension("stderr")).unwrap_or_default();
        panic!("the OpenID provider did not start within {START_WAIT:?} ({exited:?}): {stderr}");
    };
    (child, port)
}

/// Settings that let providers on this machine be reached (over plain HTTP).
pub fn allow_loopback(settings: &mut tenant_plane::config::Settings) {
    settings.identity.allowed_addresses = vec!["127.0.0.1/32".parse().unwrap()];
}

/// A provider body: `issuer` by discovery, audience `tenant-plane`, groups
/// in `groups`, these mappings.
pub fn provider_body(issuer: &str, mappings: Value) -> Value {
    json!({ "issuer": issuer, "audience": "tenant-plane", "mappings": mappings })
}

/// `PUT /v1/tenants/{tenant}/identity-provider` as super_admin.
pub async fn set_provider(
    app: &crate::helpers::TestApp,
    tenant: &str,
    body: &Value,
) -> reqwest::Response {
    app.admin(
        reqwest::Method::PUT,
        &format!("/v1/tenants/{tenant}/identity-provider"),
        Some(body.clone()),
    )
    .await
}
