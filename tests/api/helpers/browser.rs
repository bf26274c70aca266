//! A real browser for the tests that need one, in a throwaway profile: headless Chromium driven
//! through chromedriver, or headless Firefox through geckodriver, both with fantoccini
//! (WebDriver).
//!
//! Certificates: Chromium is started with `--ignore-certificate-errors-spki-list` holding the
//! SHA-256 of *this test's* server key only; every other certificate is still checked. Firefox
//! gets a new profile whose certificate database (cert9.db, written by NSS's `certutil`) trusts
//! *this test's* CA and nothing else of ours; `acceptInsecureCerts`, which would accept any bad
//! certificate, stays off. Without the browser, its driver (and for Firefox `certutil`) these
//! tests are ignored, with the reason (build.rs looks for them), and fail if run anyway; under
//! `CI=true` a missing browser fails the build.
//!
//! The console: chromedriver has a log endpoint; geckodriver does not, so a Firefox session is
//! opened with WebDriver BiDi (`webSocketUrl: true`) and its `log.entryAdded` events are kept.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;

use super::TestApp;

/// Which browser a test drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Chromium,
    Firefox,
}

/// A headless browser session; closed with [`Browser::close`].
pub struct Browser {
    pub client: Client,
    pub kind: Kind,
    /// Firefox: the console lines received over WebDriver BiDi, not yet read by [`Browser::console`].
    bidi_log: Option<Arc<Mutex<Vec<String>>>>,
    /// Firefox launched with [`Browser::launch_recording`]: the BiDi `network.*` events received
    /// so far, not yet read by [`Browser::network_events`].
    bidi_network: Option<Arc<Mutex<Vec<serde_json::Value>>>>,
    _bidi: Option<tokio::task::JoinHandle<()>>,
    _driver: tokio::process::Child,
    /// Set by [`Browser::close`]; otherwise (a test that panicked) dropping the session kills the
    /// browser, which killing its driver leaves running.
    closed: bool,
    _profile: TempDir,
}

impl Browser {
    /// Starts Chromium for the app's server key.
    pub async fn launch(app: &TestApp) -> Self {
        Self::launch_in(Kind::Chromium, app, true).await
    }

    /// Starts `kind`. `trust_api: false` starts it without trusting the API's certificate: it
    /// then checks the dev certificate like any other, and refuses it (its CA is not installed).
    pub async fn launch_in(kind: Kind, app: &TestApp, trust_api: bool) -> Self {
        match kind {
            Kind::Chromium => Self::chromium(app, trust_api, None).await,
            Kind::Firefox => Self::firefox(app, trust_api, None, false, None).await,
        }
    }

    /// As [`Browser::launch_in`] (trusting the API), with `host` resolving to 127.0.0.1: a name
    /// that is not `localhost`, for what browsers treat differently from loopback (they count
    /// `http://localhost` and `http://127.0.0.1` as potentially trustworthy, so as no mixed
    /// content). Chromium maps it (`--host-resolver-rules`); Firefox resolves every name to
    /// 127.0.0.1 (`network.dns.forceResolve`), which changes nothing for `localhost`.
    pub async fn launch_resolving(kind: Kind, app: &TestApp, host: &str) -> Self {
        match kind {
            Kind::Chromium => Self::chromium(app, true, Some(host)).await,
            Kind::Firefox => Self::firefox(app, true, Some(host), false, None).await,
        }
    }

    /// As [`Browser::launch_in`], and the browser's network events are kept for
    /// [`Browser::network_events`]: Chromium's DevTools `Network.*` events (always in its
    /// performance log), Firefox's WebDriver BiDi `network.*` events (subscribed to only here).
    pub async fn launch_recording(kind: Kind, app: &TestApp, trust_api: bool) -> Self {
        match kind {
            Kind::Chromium => Self::chromium(app, trust_api, None).await,
            Kind::Firefox => Self::firefox(app, trust_api, None, true, None).await,
        }
    }

    /// As [`Browser::launch_recording`] (trusting the API), with `host` resolving to 127.0.0.1
    /// as [`Browser::launch_resolving`] has it.
    pub async fn launch_recording_resolving(kind: Kind, app: &TestApp, host: &str) -> Self {
        match kind {
            Kind::Chromium => Self::chromium(app, true, Some(host)).await,
            Kind::Firefox => Self::firefox(app, true, Some(host), true, None).await,
        }
    }

    /// Firefox recording as [`Browser::launch_recording`] does, with DevTools open and its own
    /// HAR exporter writing a file into `dir` each time a page has loaded (HAR automation,
    /// `devtools.netmonitor.har.enableAutoExportToFile`): what "Save All As HAR" writes.
    pub async fn launch_firefox_exporting(app: &TestApp, dir: &Path) -> Self {
        Self::firefox(app, true, None, true, Some(dir)).await
    }

    async fn chromium(app: &TestApp, trust_api: bool, host: Option<&str>) -> Self {
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
        wait_for_port(port, "chromedriver").await;

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
        .chain(host.map(|host| format!("--host-resolver-rules=MAP {host} 127.0.0.1")))
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
            kind: Kind::Chromium,
            bidi_log: None,
            bidi_network: None,
            _bidi: None,
            _driver: driver,
            _profile: profile,
            closed: false,
        }
    }

    async fn firefox(
        app: &TestApp,
        trust_api: bool,
        host: Option<&str>,
        network: bool,
        exports: Option<&Path>,
    ) -> Self {
        let (firefox, geckodriver) = find_firefox();
        let profile = firefox_profile(app, trust_api);
        let (port, bidi_port) = (free_port(), free_port());
        let driver = tokio::process::Command::new(&geckodriver)
            .arg(format!("--port={port}"))
            // Each geckodriver needs its own BiDi port (the default, 9222, is shared).
            .arg(format!("--websocket-port={bidi_port}"))
            .env("MOZ_HEADLESS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("geckodriver starts");
        wait_for_port(port, "geckodriver").await;
        let mut args = vec![json!("-headless"), json!("-profile"), json!(profile.path())];
        let mut prefs = firefox_prefs();
        if host.is_some() {
            prefs["network.dns.forceResolve"] = json!("127.0.0.1");
        }
        if let Some(dir) = exports {
            // Firefox's own HAR exporter (the one behind "Save All As HAR"), run by DevTools
            // when a page has loaded, with the toolbox open on the Network panel.
            args.push(json!("-devtools"));
            prefs["devtools.toolbox.selectedTool"] = json!("netmonitor");
            prefs["devtools.netmonitor.har.enableAutoExportToFile"] = json!(true);
            prefs["devtools.netmonitor.har.defaultLogDir"] = json!(dir);
            prefs["devtools.netmonitor.har.defaultFileName"] = json!("export");
        }
        let caps = json!({
            "browserName": "firefox",
            "acceptInsecureCerts": false,
            "webSocketUrl": true,
            "moz:firefoxOptions": {
                "binary": firefox,
                // geckodriver uses a profile named in args in place (it writes `prefs` into its
                // user.js) instead of copying a new one.
                "args": args,
                "prefs": prefs,
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Firefox session");
        client
            .set_window_size(1100, 900)
            .await
            .expect("window size");
        let bidi_url = client
            .capabilities()
            .and_then(|caps| caps.get("webSocketUrl"))
            .and_then(|url| url.as_str())
            .expect("geckodriver returns webSocketUrl")
            .to_owned();
        let (log, events, task) = bidi_events(&bidi_url, network).await;
        Self {
            client,
            kind: Kind::Firefox,
            bidi_log: Some(log),
            bidi_network: network.then_some(events),
            _bidi: Some(task),
            _driver: driver,
            _profile: profile,
            closed: false,
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
    /// The browser console since the last call: chromedriver's log endpoint, or the BiDi
    /// `log.entryAdded` events Firefox has sent so far.
    pub async fn console(&self) -> Vec<String> {
        if let Some(log) = &self.bidi_log {
            return std::mem::take(&mut *log.lock().expect("log"));
        }
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

    /// The console since the last call, once `done` says it holds what the test waits for (a
    /// condition: a browser may report a failure to its console after the page has shown it),
    /// or everything that came within 30 s, for the test's assertion to show.
    pub async fn console_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut lines = Vec::new();
        loop {
            lines.extend(self.console().await);
            if done(&lines) || tokio::time::Instant::now() > deadline {
                return lines;
            }
            // Spaces the polls; the deadline bounds a line that never comes.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The protocols ("h2", "http/1.1") of the responses received from URLs starting with
    /// `prefix`, from DevTools' Network events (a page cannot read them cross-origin).
    /// Chromium only: geckodriver has no such log.
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

    /// The statuses of the responses to requests for `url`, preflights included, in the order
    /// they came, once there are `count` of them (or after 30 s), from DevTools' Network events:
    /// they hold the status of a response the page may not read, which the console line does
    /// not give. Chromium only.
    pub async fn statuses(&self, url: &str, count: usize) -> Vec<u16> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let (mut requests, mut statuses) = (Vec::new(), Vec::new());
        loop {
            for event in self.devtools_events().await {
                let params = &event["params"];
                match event["method"].as_str() {
                    Some("Network.requestWillBeSent") if params["request"]["url"] == url => {
                        requests.push(params["requestId"].clone());
                    }
                    Some("Network.responseReceivedExtraInfo") => {
                        statuses.push((params["requestId"].clone(), params["statusCode"].clone()));
                    }
                    _ => {}
                }
            }
            let seen: Vec<u16> = statuses
                .iter()
                .filter(|(id, _)| requests.contains(id))
                .filter_map(|(_, status)| status.as_u64()?.try_into().ok())
                .collect();
            if seen.len() >= count || tokio::time::Instant::now() > deadline {
                return seen;
            }
            // Spaces the polls; the deadline bounds a response that never comes.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// DevTools protocol events since the last call (`{"method": "Network.…", "params": …}`),
    /// from chromedriver's performance log. Chromium only: geckodriver has no such log.
    pub async fn devtools_events(&self) -> Vec<serde_json::Value> {
        assert_eq!(self.kind, Kind::Chromium, "DevTools' Network events");
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

    /// The network events since the last call, each `{"method": …, "params": …}`: Chromium's
    /// DevTools `Network.*` events, or Firefox's BiDi `network.*` events (a session started with
    /// [`Browser::launch_recording`]).
    pub async fn network_events(&self) -> Vec<serde_json::Value> {
        match (self.kind, &self.bidi_network) {
            (Kind::Chromium, _) => self.devtools_events().await,
            (Kind::Firefox, Some(events)) => std::mem::take(&mut *events.lock().expect("events")),
            (Kind::Firefox, None) => {
                panic!("Firefox records network events only when launched with launch_recording")
            }
        }
    }

    /// DevTools → Network → "Disable cache", as the checkbox does it: Chromium's DevTools command
    /// (`Network.setCacheDisabled`, through chromedriver), and Firefox's WebDriver BiDi one
    /// (`network.setCacheBehavior` "bypass", on a second connection to the session).
    pub async fn disable_cache(&self) {
        match self.kind {
            Kind::Chromium => {
                let cdp = Cdp("Network.setCacheDisabled", json!({ "cacheDisabled": true }));
                self.client
                    .issue_cmd(cdp)
                    .await
                    .expect("Network.setCacheDisabled");
            }
            Kind::Firefox => {
                use futures_util::{SinkExt, StreamExt};
                use tokio_tungstenite::tungstenite::Message;
                let url = self
                    .client
                    .capabilities()
                    .and_then(|caps| caps.get("webSocketUrl"))
                    .and_then(|url| url.as_str())
                    .expect("geckodriver returns webSocketUrl")
                    .to_owned();
                let (mut socket, _) = tokio_tungstenite::connect_async(&url)
                    .await
                    .unwrap_or_else(|e| panic!("WebDriver BiDi at {url}: {e}"));
                let command = json!({
                    "id": 1,
                    "method": "network.setCacheBehavior",
                    "params": { "cacheBehavior": "bypass" },
                });
                socket
                    .send(Message::text(command.to_string()))
                    .await
                    .expect("network.setCacheBehavior");
                // In force once its answer arrives.
                while let Some(message) = socket.next().await {
                    let Ok(Message::Text(text)) = message else {
                        continue;
                    };
                    let answer: serde_json::Value = serde_json::from_str(&text).expect("BiDi JSON");
                    if answer["id"] == 1 {
                        assert_eq!(
                            answer["type"], "success",
                            "network.setCacheBehavior: {answer}"
                        );
                        return;
                    }
                }
                panic!("BiDi closed before answering network.setCacheBehavior");
            }
        }
    }

    /// Saves a screenshot when DEMO_SCREENSHOTS names a directory (how docs/ was made). The
    /// docs show Chromium: in Firefox, `firefox-` is put before the name.
    pub async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("DEMO_SCREENSHOTS") {
            let name = match self.kind {
                Kind::Chromium => name.to_owned(),
                Kind::Firefox => format!("firefox-{name}"),
            };
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(Path::new(&dir).join(&name), png).expect("write screenshot");
        }
    }

    pub async fn close(mut self) {
        self.client.clone().close().await.expect("session closed");
        self.closed = true;
    }

    /// The browser's main process: Firefox reports it (`moz:processID`); Chromium names it in its
    /// profile's `SingletonLock` link (`HOST-PID`).
    fn browser_pid(&self) -> Option<i32> {
        match self.kind {
            Kind::Firefox => self
                .client
                .capabilities()?
                .get("moz:processID")?
                .as_i64()
                .and_then(|pid| i32::try_from(pid).ok()),
            Kind::Chromium => std::fs::read_link(self._profile.path().join("SingletonLock"))
                .ok()?
                .to_str()?
                .rsplit('-')
                .next()?
                .parse()
                .ok(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed
            && let Some(pid) = self.browser_pid()
        {
            // SAFETY: kill(2) on this session's own browser process; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// chromedriver's (non-W3C) endpoint for a DevTools protocol command: `(method, params)`.
#[derive(Debug)]
struct Cdp(&'static str, serde_json::Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.0, "params": self.1 });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// How [`other_server`] answers: preflights (`OPTIONS`) with `preflight` and CORS headers for the
/// page's origin; other requests with `actual`, with those headers if `actual_allows_origin`.
#[derive(Clone, Copy)]
pub struct Answers {
    pub preflight: &'static str,
    pub actual: &'static str,
    pub actual_allows_origin: bool,
}

impl Answers {
    /// Every request `status`, with CORS headers.
    pub fn all(status: &'static str) -> Self {
        Self {
            preflight: status,
            actual: status,
            actual_allows_origin: true,
        }
    }
}

/// Another API, at `http://localhost:PORT/delivery/all` (plain HTTP: a page may call localhost
/// over http), that answers as `answers` says, with CORS headers for `origin`: methods GET and
/// POST, headers Authorization and Accept. Also returns how many connections it has accepted.
pub async fn other_server(answers: Answers, origin: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!(
        "http://localhost:{}/delivery/all",
        listener.local_addr().expect("addr").port()
    );
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let origin = origin.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, cors) = match request.starts_with(b"OPTIONS ") {
                    true => (answers.preflight, true),
                    false => (answers.actual, answers.actual_allows_origin),
                };
                let cors = match cors {
                    true => format!(
                        "access-control-allow-origin: {origin}\r\n\
                         access-control-allow-methods: GET, POST\r\n\
                         access-control-allow-headers: authorization, accept\r\n"
                    ),
                    false => String::new(),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\n{cors}\
                     vary: Origin\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, connections)
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

pub async fn wait_for_port(port: u16, driver: &str) {
    // A poll for a condition (the driver listening), not a wait for a time: the pause only
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
    panic!("{driver} did not start listening on {port} within 60 s");
}

/// Firefox, geckodriver and NSS's certutil, or a failed test: without them the Firefox tests are
/// `#[ignore]`d (build.rs).
pub fn find_firefox() -> (PathBuf, PathBuf) {
    let firefox = std::env::var_os("FIREFOX")
        .map(PathBuf::from)
        .or_else(|| which(&["firefox-esr", "firefox"]));
    let driver = std::env::var_os("GECKODRIVER")
        .map(PathBuf::from)
        .or_else(|| which(&["geckodriver"]));
    match (firefox, driver, which(&["certutil"])) {
        (Some(firefox), Some(driver), Some(_)) => (firefox, driver),
        _ => panic!(
            "firefox, geckodriver and certutil not found: apt-get install firefox-esr \
             libnss3-tools, cargo install geckodriver --locked; or set FIREFOX / GECKODRIVER"
        ),
    }
}

fn which(names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|name| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// A new Firefox profile whose certificate database (written by NSS's certutil) trusts the app's
/// CA, or (`trust_api: false`) nothing of ours.
fn firefox_profile(app: &TestApp, trust_api: bool) -> TempDir {
    let profile = tempfile::tempdir().expect("profile dir");
    let certs = sql_db(profile.path());
    certutil(&["-N", "-d", &certs, "--empty-password"]);
    if trust_api {
        let ca = app.dir.path().join(delivery_api::tls::dev_ca::CA_CERT);
        certutil(&[
            "-A",
            "-d",
            &certs,
            "-n",
            "delivery-api test CA",
            "-t",
            "C,,",
            "-i",
            &ca.display().to_string(),
        ]);
    }
    profile
}

/// NSS's name for the SQLite certificate database (cert9.db, key4.db) in a profile directory.
fn sql_db(profile: &Path) -> String {
    format!("sql:{}", profile.display())
}

fn certutil(args: &[&str]) {
    let out = std::process::Command::new("certutil")
        .args(args)
        .output()
        .expect("certutil runs");
    assert!(
        out.status.success(),
        "certutil {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Prefs that keep Firefox off the network (this machine has none, CI neither): geckodriver sets
/// many of these itself (Marionette's recommended prefs); stating them here does not depend on
/// its version.
fn firefox_prefs() -> serde_json::Value {
    json!({
        // Updates of the browser, add-ons, plugins (GMP).
        "app.update.disabledForTesting": true,
        "app.update.auto": false,
        "extensions.update.enabled": false,
        "extensions.getAddons.cache.enabled": false,
        "media.gmp-manager.updateEnabled": false,
        // Telemetry, studies, experiments, remote settings (blocklists, CRLite, intermediates).
        "toolkit.telemetry.enabled": false,
        "toolkit.telemetry.unified": false,
        "toolkit.telemetry.server": "",
        "datareporting.policy.dataSubmissionEnabled": false,
        "datareporting.healthreport.uploadEnabled": false,
        "app.normandy.enabled": false,
        "app.shield.optoutstudies.enabled": false,
        "messaging-system.rsexperimentloader.enabled": false,
        "services.settings.server": "data:,#remote-settings-dummy/v1",
        "security.remote_settings.crlite_filters.enabled": false,
        "security.remote_settings.intermediates.enabled": false,
        // Captive portal and connectivity checks, DNS over HTTPS, Safe Browsing, geolocation.
        "network.captive-portal-service.enabled": false,
        "network.connectivity-service.enabled": false,
        "network.trr.mode": 5,
        "browser.safebrowsing.malware.enabled": false,
        "browser.safebrowsing.phishing.enabled": false,
        "browser.safebrowsing.downloads.enabled": false,
        "browser.safebrowsing.blockedURIs.enabled": false,
        "browser.safebrowsing.update.enabled": false,
        "geo.provider.network.url": "",
        // OCSP: the test CA names no responder, and none could be reached.
        "security.OCSP.enabled": 0,
        // Prefetching, speculative connections, the new-tab page and its feeds.
        "network.dns.disablePrefetch": true,
        "network.prefetch-next": false,
        "network.predictor.enabled": false,
        "network.http.speculative-parallel-limit": 0,
        "browser.newtabpage.enabled": false,
        "browser.newtabpage.activity-stream.feeds.system.topstories": false,
        "browser.newtabpage.activity-stream.feeds.snippets": false,
        "browser.startup.page": 0,
        "browser.startup.homepage": "about:blank",
        "browser.shell.checkDefaultBrowser": false,
    })
}

/// What a Firefox session's BiDi socket has delivered: console lines, `network.*` events.
type BidiKept = (
    Arc<Mutex<Vec<String>>>,
    Arc<Mutex<Vec<serde_json::Value>>>,
    tokio::task::JoinHandle<()>,
);

/// Subscribes to Firefox's console over WebDriver BiDi (`log.entryAdded`) and keeps each entry's
/// text, until the session ends; with `network`, also to the `network` module's events
/// (`beforeRequestSent`, `responseStarted`, `responseCompleted`, `fetchError`), kept whole.
async fn bidi_events(url: &str, network: bool) -> BidiKept {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("WebDriver BiDi at {url}: {e}"));
    let mut events = vec!["log.entryAdded"];
    if network {
        events.extend([
            "network.beforeRequestSent",
            "network.responseStarted",
            "network.responseCompleted",
            "network.fetchError",
        ]);
    }
    let subscribe = json!({
        "id": 1,
        "method": "session.subscribe",
        "params": { "events": events },
    });
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .expect("subscribe");
    // The subscription is in force once its answer arrives: only then may the test go on.
    loop {
        let message = socket
            .next()
            .await
            .expect("BiDi answers")
            .expect("BiDi message");
        let Message::Text(text) = message else {
            continue;
        };
        let answer: serde_json::Value = serde_json::from_str(&text).expect("BiDi JSON");
        if answer["id"] == 1 {
            assert_eq!(answer["type"], "success", "session.subscribe: {answer}");
            break;
        }
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let net = Arc::new(Mutex::new(Vec::new()));
    let (kept_log, kept_net) = (Arc::clone(&log), Arc::clone(&net));
    let task = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let event: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let method = event["method"].as_str().unwrap_or_default();
            if method == "log.entryAdded"
                && let Some(line) = event["params"]["text"].as_str()
            {
                kept_log.lock().expect("log").push(line.to_owned());
            } else if method.starts_with("network.") {
                kept_net.lock().expect("network").push(event);
            }
        }
    });
    (log, net, task)
}
