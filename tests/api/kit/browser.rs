//! A real Chromium, driven through chromedriver (WebDriver) with fantoccini,
//! for the console's tests. `scripts/test.sh` installs both; where they
//! cannot be installed, the browser tests skip and say so. Where the script
//! found them (`TENANT_PLANE_TEST_BROWSER=required`), a missing browser fails.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The Enter key, for `keys` (WebDriver's code for it).
pub const ENTER: &str = "\u{E007}";

/// Starts chromedriver and a headless Chromium at 1280×800, or returns None
/// (after saying why) where neither could be installed.
pub async fn start() -> Option<Browser> {
    let chromium = which(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = which(&["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        assert!(
            std::env::var("TENANT_PLANE_TEST_BROWSER").as_deref() != Ok("required"),
            "scripts/test.sh found Chromium and chromedriver, but this test cannot"
        );
        eprintln!(
            "SKIPPED: the console's browser test needs chromium and chromedriver \
             (Debian: apt-get install chromium chromium-driver; scripts/test.sh installs them where it can)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // In a process group of its own, so that Chromium (its child) goes
    // with it even when a failed test never closes the session.
    let mut driver = Command::new(driver)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    // The flags keep Chromium off the network (this machine's is closed)
    // and able to run as root in a container.
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,800",
        &format!("--user-data-dir={}", profile.path().display()),
    ];
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(e) if Instant::now() < deadline => {
                if let Some(status) = driver.try_wait().unwrap() {
                    panic!("chromedriver exited with {status}");
                }
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no WebDriver session after 30 s: {e}"),
        }
    };
    // The window is the size of its viewport plus whatever the browser
    // keeps for itself: make the viewport 1280×800.
    let chrome = client
        .execute("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]", vec![])
        .await
        .unwrap();
    let (dw, dh) = (
        chrome[0].as_u64().unwrap_or(0),
        chrome[1].as_u64().unwrap_or(0),
    );
    client
        .set_window_size(1280 + dw as u32, 800 + dh as u32)
        .await
        .unwrap();
    Some(Browser {
        client,
        driver,
        _profile: profile,
    })
}

impl Browser {
    /// Runs `script` (a function body) until it returns true; panics with
    /// `what` and the page's alert text after `secs`. A script error (an
    /// element not there yet) counts as "not yet".
    pub async fn until(&self, what: &str, secs: u64, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let outcome = self.client.execute(script, vec![]).await;
            if matches!(outcome, Ok(Value::Bool(true))) {
                return;
            }
            if Instant::now() > deadline {
                let flash = self.text("#flash").await;
                let hash = self.eval("return location.hash").await;
                panic!("waited {secs} s for {what}; at {hash}, the alert says {flash:?}; last: {outcome:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const el = document.querySelector({}); return el ? el.textContent : null",
            json!(css)
        );
        self.eval(&script).await.as_str().unwrap_or("").to_string()
    }

    /// Clicks the element `css` names. A live update may redraw it between
    /// the find and the click (a stale element): it is found again.
    pub async fn click(&self, css: &str) {
        let mut attempts = 0;
        loop {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css}: {e}"));
            match element.click().await {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                        && attempts < 20 =>
                {
                    attempts += 1;
                }
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Keys sent to whatever has the focus, as a keyboard-only user would.
    pub async fn keys(&self, text: &str) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(text).await.unwrap();
    }

    /// A JSON request made by the page itself (with its cookie): (status, body).
    pub async fn fetch(&self, path: &str) -> (u16, Value) {
        let script = format!(
            "const done = arguments[0];
             fetch({}, {{ credentials: 'same-origin' }})
               .then(async (r) => done([r.status, await r.text()]))
               .catch((e) => done([0, String(e)]));",
            json!(path)
        );
        let out = self.client.execute_async(&script, vec![]).await.unwrap();
        let status = out[0].as_u64().unwrap() as u16;
        let body = serde_json::from_str(out[1].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        (status, body)
    }

    /// Saves a PNG of the page under `target/console-screenshots/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.eval("window.scrollTo(0, 0); return true").await;
        self.capture(name).await
    }

    /// `screenshot`, scrolled so the panel holding `css` starts the view.
    pub async fn screenshot_at(&self, name: &str, css: &str) -> PathBuf {
        let script = format!(
            "const el = document.querySelector({}); (el.closest('section') || el).scrollIntoView(); return true",
            json!(css)
        );
        self.eval(&script).await;
        self.capture(name).await
    }

    async fn capture(&self, name: &str) -> PathBuf {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
            .join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop kills what is left.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.driver.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}

/// Signs in through the form.
pub async fn sign_in(b: &Browser, url: &str, credential: &str) {
    b.client.goto(url).await.unwrap();
    b.until(
        "the sign-in page",
        20,
        "return !!document.querySelector('#credential')",
    )
    .await;
    b.type_into("#credential", credential).await;
    b.click("#sign-in button[type=submit]").await;
    b.until(
        "the signed-in page",
        20,
        "return !document.querySelector('#top').hidden",
    )
    .await;
}
