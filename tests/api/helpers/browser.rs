//! A real browser for the tests that need one: headless Chromium driven through chromedriver
//! with fantoccini (WebDriver), in a throwaway profile.
//!
//! Certificates: Chromium is started with `--ignore-certificate-errors-spki-list` holding the
//! SHA-256 of *this test's* server key only; every other certificate is still checked. Without
//! chromium/chromedriver the browser tests are ignored, with the reason (build.rs looks for
//! them), and fail if run anyway; under `CI=true` a missing browser fails the build.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;

use super::TestApp;

/// A headless browser session; closed with [`Browser::close`].
pub struct Browser {
    pub client: Client,
    _driver: tokio::process::Child,
    _profile: TempDir,
}

impl Browser {
    /// Starts Chromium for the app's server key.
    pub async fn launch(app: &TestApp) -> Self {
        Self::launch_trusting(app, true).await
    }

    /// `trust_api: false` starts Chromium without the exception for the API's key: it then
    /// checks the dev certificate like any other, and refuses it (its CA is not installed).
    pub async fn launch_trusting(app: &TestApp, trust_api: bool) -> Self {
        let (chromium, chromedriver) = find_browser();
        let profile = tempfile::tempdir().expect("profile dir");
        let port = free_port();
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        wait_for_port(port).await;

        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,900",
        ]
        .into_iter()
        .map(String::from)
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .chain(
            trust_api
                .then(|| format!("--ignore-certificate-errors-spki-list={}", spki_sha256(app))),
        )
        .collect::<Vec<_>>();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the demo page loads");
    }

    /// The element `css` selects, once it appears (a condition, bounded for a broken page).
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} appears: {e}"))
    }

    pub async fn find(&self, locator: Locator<'_>) -> fantoccini::elements::Element {
        self.client.find(locator).await.expect("element")
    }
    /// The browser console since the last call (chromedriver's log endpoint).
    pub async fn console(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(BrowserLog("browser"))
            .await
            .expect("browser log");
        entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e["message"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The protocols ("h2", "http/1.1") of the responses received from URLs starting with
    /// `prefix`, from DevTools' Network events (a page cannot read them cross-origin).
    pub async fn protocols(&self, prefix: &str) -> Vec<String> {
        let mut seen = Vec::new();
        for event in self.devtools_events().await {
            let response = &event["params"]["response"];
            if event["method"] == "Network.responseReceived"
                && response["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(prefix))
                && let Some(protocol) = response["protocol"].as_str()
                && !seen.iter().any(|p| p == protocol)
            {
                seen.push(protocol.to_owned());
            }
        }
        seen
    }

    /// DevTools protocol events since the last call (`{"method": "Network.…", "params": …}`),
    /// from chromedriver's performance log.
    pub async fn devtools_events(&self) -> Vec<serde_json::Value> {
        let entries = self
            .client
            .issue_cmd(BrowserLog("performance"))
            .await
            .expect("performance log");
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["message"].as_str())
            .filter_map(|message| serde_json::from_str::<serde_json::Value>(message).ok())
            .map(|mut event| event["message"].take())
            .collect()
    }

    /// Saves a screenshot when DEMO_SCREENSHOTS names a directory (how docs/ was made).
    pub async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("DEMO_SCREENSHOTS") {
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(Path::new(&dir).join(name), png).expect("write screenshot");
        }
    }

    pub async fn close(self) {
        self.client.close().await.expect("session closed");
    }
}

/// chromedriver's (non-W3C) endpoint for its logs: "browser" (the console) or "performance"
/// (DevTools network events).
#[derive(Debug)]
struct BrowserLog(&'static str);

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": self.0 }).to_string()),
        )
    }
}

/// Chromium and chromedriver, or a failed test: without them these tests are `#[ignore]`d
/// (build.rs), so getting here without them is an error to report, not a pass.
pub fn find_browser() -> (PathBuf, PathBuf) {
    let which = |names: &[&str]| {
        names.iter().find_map(|name| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    };
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| which(&["chromium", "chromium-browser", "google-chrome"]));
    let driver = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which(&["chromedriver"]));
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => (chromium, driver),
        _ => panic!(
            "chromium and chromedriver not found: apt-get install chromium chromium-driver, or set \
             CHROMIUM / CHROMEDRIVER"
        ),
    }
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the app's server key: the one key Chromium may accept.
pub fn spki_sha256(app: &TestApp) -> String {
    let pem = std::fs::read_to_string(app.dir.path().join("localhost.key")).expect("server key");
    let key = rcgen::KeyPair::from_pem(&pem).expect("key");
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub async fn wait_for_port(port: u16) {
    // A poll for a condition (chromedriver listening), not a wait for a time: the pause only
    // spaces the attempts; the deadline is for a chromedriver that never starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not start listening on {port} within 60 s");
}
