//! One way to start the app in a test: the real `Application::build` on a free port, over TLS,
//! with its own tempdir (freshly generated dev CA, and the SQLite file) or its own PostgreSQL
//! database (`DELIVERY_API_TEST_ENGINE=postgres`, see `pg.rs`), and a client that trusts only
//! that CA.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use delivery_api::config::ServeArgs;
use delivery_api::fetch::{self as cors_check, CorsRequest, Outcome};
use delivery_api::startup::{AppHandle, Application, Listeners};
use delivery_api::store::Db;
use delivery_api::tls::dev_ca;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response};
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tempfile::TempDir;

/// The article's frontend origin (Angular's dev server), allowed by default.
pub const ORIGIN: &str = "http://localhost:4200";
/// The article's headers on the actual request.
pub const ACCEPT: &str = "application/json, text/plain, */*";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
pub const USER: &str = "demo";
pub const PASSWORD: &str = "demo-password";
/// Deliveries seeded by the migrations.
pub const SEEDED: usize = 12;

pub struct TestApp {
    pub addr: SocketAddr,
    /// `https://localhost:PORT`: the name in the certificate, resolved to the bound address.
    pub base: String,
    pub client: reqwest::Client,
    /// The server's own database handle (SQLite or PostgreSQL).
    pub db: Db,
    /// Its database's URL (`sqlite://…/test.db` or `postgres://…`), for a second server or the CLI.
    pub db_url: String,
    pub authenticator: actix_web::web::Data<delivery_api::auth::Authenticator>,
    pub dir: Arc<TempDir>,
    /// The demo page's URL, when started with [`spawn_app_with_page`].
    pub page: Option<String>,
    /// `http://ADDR/metrics`, when started with `--metrics-bind` (see [`TestApp::scrape`]).
    pub metrics: Option<String>,
    handle: AppHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app with default flags, adjusted by `configure`, in a fresh directory.
pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    dev_ca::generate(dir.path()).expect("dev certificates");
    start(dir, None, configure).await
}

/// Also serves the demo page, on a free port of its own (as `--demo-page-bind` moves it). The
/// API always allows the page's own origin; `configure` gets it (`http://localhost:PORT`) too.
pub async fn spawn_app_with_page(configure: impl FnOnce(&mut ServeArgs, &str)) -> TestApp {
    let page = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port for the page");
    spawn_app_with_page_on(page, configure).await
}

/// Like [`spawn_app_with_page`], with the page on a listener the caller bound.
pub async fn spawn_app_with_page_on(
    page: std::net::TcpListener,
    configure: impl FnOnce(&mut ServeArgs, &str),
) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    dev_ca::generate(dir.path()).expect("dev certificates");
    let origin = format!(
        "http://localhost:{}",
        page.local_addr().expect("addr").port()
    );
    start(dir, Some(page), |args| configure(args, &origin)).await
}

impl TestApp {
    /// Stops this server and starts a new one on the same directory (database and certificates).
    pub async fn restart(self, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
        self.handle.stop(true).await;
        self.server
            .await
            .expect("server task")
            .expect("server stopped cleanly");
        start(self.dir, None, configure).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /metrics` on `--metrics-bind` (plain HTTP): the Prometheus text.
    pub async fn scrape(&self) -> String {
        let url = self
            .metrics
            .as_deref()
            .expect("started with --metrics-bind");
        let res = self.client.get(url).send().await.expect("scraped");
        assert_eq!(res.status(), 200, "GET {url}");
        res.text().await.expect("the metrics")
    }

    /// A request as a browser on `origin` would send it (no credentials unless added).
    pub fn request(&self, method: Method, path: &str, origin: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("Origin", origin)
    }

    /// The preflight a browser sends before the article's request: no credentials, ever.
    pub async fn preflight(&self, path: &str, method: &str, origin: &str) -> Response {
        self.request(Method::OPTIONS, path, origin)
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
            .await
            .expect("preflight sent")
    }

    /// The article's actual request: its three headers, from `origin`, as `user:password`.
    pub fn article_request(&self, method: Method, path: &str, origin: &str) -> RequestBuilder {
        self.request(method, path, origin)
            .header("Accept", ACCEPT)
            .header("Content-Type", CONTENT_TYPE)
            .basic_auth(USER, Some(PASSWORD))
    }

    /// `GET path` from `ORIGIN` without credentials (public routes, and 401s).
    pub async fn get_without_credentials(&self, path: &str) -> Response {
        self.request(Method::GET, path, ORIGIN)
            .send()
            .await
            .expect("GET sent")
    }

    pub async fn get_all(&self) -> Response {
        self.article_request(Method::GET, "/delivery/all", ORIGIN)
            .send()
            .await
            .expect("GET sent")
    }

    pub async fn create(&self, body: &Value) -> Response {
        self.article_request(Method::POST, "/delivery", ORIGIN)
            .body(body.to_string())
            .send()
            .await
            .expect("POST sent")
    }

    pub async fn count_deliveries(&self) -> i64 {
        self.scalar("SELECT count(*) FROM deliveries").await
    }

    /// One number from SQL that reads the same on both engines.
    pub async fn scalar(&self, sql: &str) -> i64 {
        scalar(&self.db, sql).await
    }

    /// Runs SQL that reads the same on both engines (`$1`… parameters: none here).
    pub async fn execute(&self, sql: &str) {
        execute(&self.db, sql).await
    }

    /// The SQLite file, for tests of what only a file can do (be moved, fill a disk); `None`,
    /// with the test's name printed as skipped, on PostgreSQL.
    pub fn sqlite_file(&self, test: &str) -> Option<std::path::PathBuf> {
        match &self.db {
            Db::Sqlite { .. } => Some(self.dir.path().join("test.db")),
            Db::Postgres(_) => {
                eprintln!("SKIPPED on PostgreSQL {test}: it is about the SQLite file");
                None
            }
        }
    }
}

/// Runs one expression on whichever pool `db` holds (the same SQL on both engines).
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            delivery_api::store::Db::Sqlite { pool: $pool, .. } => $body,
            delivery_api::store::Db::Postgres($pool) => $body,
        }
    };
}

pub(crate) use on_db;

pub async fn scalar(db: &Db, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    on_db!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await)
    .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn execute(db: &Db, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    on_db!(db, |pool| sqlx::query(sql).execute(pool).await.map(drop))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Another connection to `url`'s database, as another process would have (migrated, so usable
/// on a new database too).
pub async fn open_db(url: &str) -> Db {
    let args = delivery_api::store::Settings {
        url: url.to_owned(),
        busy_timeout: std::time::Duration::from_secs(5),
    };
    delivery_api::store::connect(&args)
        .await
        .expect("the database opens")
        .db
}

/// The database for the app whose files are in `dir`: the URL in `dir`/database-url if there is
/// one (see [`use_database`]); else `dir`/test.db on SQLite, or on PostgreSQL a new database in
/// the shared cluster, remembered there, so that a restarted server finds its data.
pub async fn database_url(dir: &Path) -> String {
    let remembered = dir.join("database-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return url;
    }
    if !crate::pg::on_postgres() {
        return format!("sqlite://{}", dir.join("test.db").display());
    }
    let url = crate::pg::cluster().new_database().await;
    use_database(dir, &url);
    url
}

/// Makes servers started on `dir` use the database at `url` (several instances, one database).
pub fn use_database(dir: &Path, url: &str) {
    std::fs::write(dir.join("database-url"), url).expect("remember the database");
}

async fn start(
    dir: Arc<TempDir>,
    demo_page: Option<std::net::TcpListener>,
    configure: impl FnOnce(&mut ServeArgs),
) -> TestApp {
    delivery_api::telemetry::init(if std::env::var_os("TEST_LOG").is_some() {
        "info"
    } else {
        "off"
    });
    let mut args = ServeArgs::defaults();
    args.bind = "127.0.0.1:0".parse().expect("addr");
    args.db.database_url = database_url(dir.path()).await;
    args.tls.cert = Some(dir.path().join(dev_ca::SERVER_CERT));
    args.tls.key = Some(dir.path().join(dev_ca::SERVER_KEY));
    args.workers = Some(2);
    args.shutdown_grace = 2;
    configure(&mut args);
    let args_url = args.db.database_url.clone();

    let listeners = Listeners {
        api: std::net::TcpListener::bind(args.bind).expect("a free port"),
        demo_page,
    };
    let app = Application::build_on(args, listeners)
        .await
        .expect("the app starts");
    let addr = app.addr();
    let page = app
        .demo_page_addr()
        .map(|a| format!("http://localhost:{}/", a.port()));
    let metrics = app.metrics_addr().map(|a| format!("http://{a}/metrics"));
    let db = app.db().clone();
    let db_url = args_url.clone();
    let authenticator = app.authenticator();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        addr,
        base: format!("https://localhost:{}", addr.port()),
        client: client_trusting(&dir.path().join(dev_ca::CA_CERT), addr),
        db,
        db_url,
        authenticator,
        dir,
        page,
        metrics,
        handle,
        server,
    }
}

/// A reqwest client whose only trust anchor is the generated dev CA: every test that gets an
/// answer has verified the server certificate against it.
pub fn client_trusting(ca: &Path, addr: SocketAddr) -> reqwest::Client {
    client_builder(ca, addr, true).build().expect("client")
}

impl TestApp {
    /// A client whose connections come from another loopback address (another "client IP").
    pub fn client_from(&self, ip: [u8; 4]) -> reqwest::Client {
        client_builder(&self.dir.path().join(dev_ca::CA_CERT), self.addr, true)
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("client")
    }
}

/// `http2`: offer h2 in ALPN (as browsers do) or HTTP/1.1 only.
pub fn client_builder(ca: &Path, addr: SocketAddr, http2: bool) -> reqwest::ClientBuilder {
    let alpn: &[&[u8]] = if http2 {
        &[b"h2", b"http/1.1"]
    } else {
        &[b"http/1.1"]
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_trusting(ca, alpn))
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
}

/// A rustls client configuration whose only trust anchor is `ca`, offering `alpn`.
pub fn tls_trusting(ca: &Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let ca = std::fs::read(ca).expect("CA certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("PEM")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tls
}

/// The HTTP version of a [`TestApp::raw`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    One,
    Two,
}

/// What came back from a [`TestApp::raw`] request.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl TestApp {
    /// Sends `method target` with the request-target exactly as given, on a new TLS connection.
    /// reqwest, like a browser, resolves dot segments and re-encodes the path before sending; an
    /// attacker's client does neither, so the tests of the auth boundary use this. `Err` means the
    /// server refused at the protocol level (a reset stream or connection): no response at all.
    pub async fn raw(
        &self,
        http: Http,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<RawResponse, String> {
        use http_body_util::BodyExt as _;
        let alpn: &[&[u8]] = match http {
            Http::One => &[b"http/1.1"],
            Http::Two => &[b"h2"],
        };
        let tls = tls_trusting(&self.dir.path().join(dev_ca::CA_CERT), alpn);
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let uri = match http {
            Http::One => target.to_owned(),
            Http::Two => format!("https://localhost:{}{target}", self.addr.port()),
        };
        let mut request = http::Request::builder().method(method).uri(uri);
        if http == Http::One {
            request = request.header("host", format!("localhost:{}", self.addr.port()));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_owned(),
            )))
            .map_err(|e| format!("cannot build {method} {target}: {e}"))?;
        let response = match http {
            Http::One => {
                let (mut send, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                send.send_request(request).await
            }
            Http::Two => {
                let (mut send, conn) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                send.send_request(request).await
            }
        }
        .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(RawResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// Writes `bytes` as they are over a new HTTP/1.1 TLS connection and returns everything the
    /// server sends until it closes (send `Connection: close`, or a request it refuses).
    pub async fn raw_http1(&self, bytes: &[u8]) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let tls = tls_trusting(&self.dir.path().join(dev_ca::CA_CERT), &[b"http/1.1"]);
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .expect("handshake");
        // The server may answer and close before it has read everything (a 431): keep going.
        let _ = stream.write_all(bytes).await;
        let mut reply = Vec::new();
        // A refusal may end with a reset rather than a clean close: keep what arrived.
        let _ = stream.read_to_end(&mut reply).await;
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// Flags for a second server on this app's database and certificates, bound to `bind`
    /// (tests of start-up refusals build it with `Application::build`).
    pub fn args_on(&self, bind: &str) -> ServeArgs {
        let mut args = ServeArgs::defaults();
        args.bind = bind.parse().expect("addr");
        args.demo.no_demo_page = true;
        args.db.database_url = self.db_url.clone();
        args.tls.cert = Some(self.dir.path().join(dev_ca::SERVER_CERT));
        args.tls.key = Some(self.dir.path().join(dev_ca::SERVER_KEY));
        args
    }

    /// Every delivery row, every column, in id order: "the database is unchanged" is equality.
    pub async fn snapshot(&self) -> Vec<(i64, String, String, String, String, String, String)> {
        on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT id, reference, recipient, address, status, \
                    CAST(created_at AS TEXT), CAST(updated_at AS TEXT)
             FROM deliveries ORDER BY id",
        )
        .fetch_all(pool)
        .await)
        .expect("snapshot")
    }
}

pub async fn json(res: Response) -> Value {
    res.json().await.expect("a JSON body")
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// The comma-separated tokens of a header, lower-cased (for Vary, Allow-*, Expose-Headers).
pub fn tokens(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The article's request as the browser's CORS rules see it (credentials mode "include", the
/// stricter of the two, since the API allows credentials).
pub fn article_cors_request(origin: &str, method: &str) -> CorsRequest {
    CorsRequest {
        origin: origin.to_owned(),
        method: method.to_owned(),
        headers: vec![
            ("Accept".into(), ACCEPT.into()),
            (
                "Authorization".into(),
                "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk".into(),
            ),
            ("Content-Type".into(), CONTENT_TYPE.into()),
        ],
        with_credentials: true,
    }
}

pub use delivery_api::preflight::seen;

/// What a browser would object to (failures and warnings).
fn objections(checks: &[cors_check::Check]) -> Vec<&cors_check::Check> {
    checks
        .iter()
        .filter(|c| !matches!(c.outcome, Outcome::Pass | Outcome::Info))
        .collect()
}

/// Judged by the browser's rules (`cors_check`, the Fetch standard): a page on `ORIGIN` can read
/// this response, with no warning (Vary: Origin, exposed headers); and WWW-Authenticate and
/// Location are exposed whether or not this response carries them.
pub fn assert_readable_by_origin(res: &Response, what: &str) {
    let checks = cors_check::check_actual(&article_cors_request(ORIGIN, "GET"), &seen(res));
    let problems = objections(&checks);
    assert!(
        problems.is_empty(),
        "{what}: a browser would object: {problems:#?}"
    );
    let exposed = tokens(res.headers(), "access-control-expose-headers");
    for name in ["www-authenticate", "location"] {
        assert!(
            exposed.contains(&name.to_owned()),
            "{what}: {name} must be exposed, got {exposed:?}"
        );
    }
}

/// Judged by the browser's rules: the preflight for the article's request passes.
pub fn assert_preflight_passes(res: &Response, method: &str, what: &str) {
    let checks = cors_check::check_preflight(&article_cors_request(ORIGIN, method), &seen(res));
    let problems = objections(&checks);
    assert!(
        problems.is_empty(),
        "{what}: a browser would refuse this preflight: {problems:#?}"
    );
}

/// An RFC 9457 problem document with the given status; returns its `detail`.
pub async fn assert_problem(res: Response, status: u16, what: &str) -> String {
    assert_eq!(res.status().as_u16(), status, "{what}: status");
    assert_eq!(
        header(res.headers(), "content-type"),
        Some("application/problem+json"),
        "{what}: content type"
    );
    let body = json(res).await;
    assert_eq!(body["status"], status, "{what}: body.status");
    assert!(body["title"].is_string(), "{what}: body.title");
    let detail = body["detail"].as_str().expect("body.detail").to_owned();
    assert!(!detail.is_empty(), "{what}: detail says what is wrong");
    detail
}

/// Runs the real binary (`delivery-api ARGS`) on the database `db`, with `stdin` as its input.
/// tokio's process API: a blocking wait would stall the runtime that drives the test's server.
pub async fn cli(args: &[&str], db: &str, stdin: &str) -> std::process::Output {
    cli_with(args, db, stdin, |_| {})
        .await
        .expect("the binary runs")
}

/// [`cli`], with `setup` adjusting the command first (its working directory, its user); an
/// error only when the binary could not be started.
pub async fn cli_with(
    args: &[&str],
    db: &str,
    stdin: &str,
    setup: impl FnOnce(&mut tokio::process::Command),
) -> std::io::Result<std::process::Output> {
    let program = Path::new(env!("CARGO_BIN_EXE_delivery-api"));
    cli_program(program, args, db, stdin, setup).await
}

/// Standard output and standard error of a run, as text.
pub fn output_text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`cli_with`], running `program` (a copy of the binary another user can reach).
pub async fn cli_program(
    program: &Path,
    args: &[&str],
    db: &str,
    stdin: &str,
    setup: impl FnOnce(&mut tokio::process::Command),
) -> std::io::Result<std::process::Output> {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    setup(&mut command);
    let mut child = command.spawn()?;
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    child.wait_with_output().await
}

/// The real binary, serving in its own process (for kill -9, signals and its log).
pub struct Served {
    pub child: tokio::process::Child,
    pub port: u16,
    /// Everything it has logged so far (stderr), see [`Served::drain_log`].
    pub log: String,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
}

/// A directory with the dev certificates, for [`serve_binary`] (which creates the database).
pub fn certs() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    dev_ca::generate(dir.path()).expect("dev certificates");
    dir
}

/// Starts `delivery-api serve` on a free port, on `dir`'s database and certificates.
pub async fn serve_binary(dir: &Path, rust_log: &str, extra: &[&str]) -> Served {
    serve_binary_with(dir, rust_log, extra, |_| {}).await
}

/// Like [`serve_binary`], with the command adjusted by `adjust` before it starts.
pub async fn serve_binary_with(
    dir: &Path,
    rust_log: &str,
    extra: &[&str],
    adjust: impl FnOnce(&mut tokio::process::Command),
) -> Served {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_delivery-api"));
    adjust(&mut command);
    let mut child = command
        .args(["serve", "--bind", "127.0.0.1:0", "--no-demo-page"])
        .args(extra)
        .arg("--cert")
        .arg(dir.join(dev_ca::SERVER_CERT))
        .arg("--key")
        .arg(dir.join(dev_ca::SERVER_KEY))
        .env("DATABASE_URL", database_url(dir).await)
        // The start-up line carries the port: keep it whatever the level asked for.
        .env("RUST_LOG", format!("{rust_log},delivery_api::startup=info"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    let port = loop {
        let line = lines
            .next_line()
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("the server exited before serving:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("serving https://127.0.0.1:").nth(1) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
        }
    };
    Served {
        child,
        port,
        log,
        lines,
    }
}

impl Served {
    pub fn client(&self, dir: &Path) -> reqwest::Client {
        client_trusting(
            &dir.join(dev_ca::CA_CERT),
            ([127, 0, 0, 1], self.port).into(),
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Reads the log until a line matches `wanted`, and returns it. Fails if the server exits
    /// first, or if no such line comes within a minute (a bound for a broken build, far above
    /// the milliseconds a working one takes on a loaded machine).
    pub async fn wait_for_log_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line());
            let line = next
                .await
                .unwrap_or_else(|_| panic!("no such line within 60 s; the log:\n{}", self.log))
                .expect("read the log")
                .unwrap_or_else(|| panic!("the server exited; its log:\n{}", self.log));
            self.log.push_str(&line);
            self.log.push('\n');
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Reads the rest of the log (call after the process has exited or been killed).
    pub async fn drain_log(&mut self) -> &str {
        while let Ok(Some(line)) = self.lines.next_line().await {
            self.log.push_str(&line);
            self.log.push('\n');
        }
        &self.log
    }
}

/// A TLS connection to the app offering only `h2`, and an HTTP/2 client on it (the caller drives
/// or spawns the connection).
pub async fn h2_client(
    app: &TestApp,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    h2::client::Connection<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, bytes::Bytes>,
) {
    let tcp = tokio::net::TcpStream::connect(app.addr).await.expect("tcp");
    let tls = tls_trusting(&app.dir.path().join("dev-ca.crt"), &[b"h2"]);
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .expect("TLS");
    h2::client::handshake(tls).await.expect("h2")
}

/// The first line a started binary writes on stdout: its ready line, one JSON object.
pub async fn ready_line(
    stdout: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> serde_json::Value {
    let line = stdout
        .next_line()
        .await
        .expect("read stdout")
        .expect("a ready line before exit");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    assert_eq!(ready["event"], "ready", "{ready}");
    ready
}

/// The document as served by `GET /openapi.json`, to check responses against it.
pub struct ApiDocument {
    pub doc: Value,
    registry: jsonschema::Registry<'static>,
}

/// The URI the document is known by while its schemas are resolved (never fetched).
const DOC_URI: &str = "https://delivery-api.test/openapi.json";

/// Response headers that are part of the API's contract: when one is sent, the document must
/// name it for that status.
const CONTRACT_HEADERS: [&str; 6] = [
    "location",
    "www-authenticate",
    "retry-after",
    "etag",
    "link",
    "x-total-count",
];

impl TestApp {
    /// `GET /openapi.json`, without credentials (it is public).
    pub async fn openapi(&self) -> ApiDocument {
        let res = self.get_without_credentials("/openapi.json").await;
        assert_eq!(res.status(), 200, "GET /openapi.json");
        ApiDocument::new(json(res).await)
    }
}

impl ApiDocument {
    pub fn new(doc: Value) -> Self {
        let registry = jsonschema::Registry::new()
            .add(DOC_URI, doc.clone())
            .expect("the document as a resource")
            .prepare()
            .expect("the document's references resolve");
        Self { doc, registry }
    }

    /// Every documented (path template, METHOD).
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                ops.push((path.clone(), method.to_ascii_uppercase()));
            }
        }
        ops
    }

    pub fn operation(&self, method: &str, template: &str) -> &Value {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        op
    }

    /// True when the operation names a security requirement (Basic auth).
    pub fn needs_credentials(&self, method: &str, template: &str) -> bool {
        self.operation(method, template)["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    }

    /// The documented response for `status`, `$ref` followed, and its JSON pointer.
    fn response(&self, method: &str, template: &str, status: u16) -> (String, &Value) {
        let op = self.operation(method, template);
        let response = &op["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which the document does not list for it"
        );
        if let Some(target) = response["$ref"].as_str() {
            let pointer = target.trim_start_matches('#').to_owned();
            let resolved = self.doc.pointer(&pointer).expect("the $ref resolves");
            return (pointer, resolved);
        }
        let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
        let pointer = format!(
            "/paths/{}/{}/responses/{status}",
            escape(template),
            method.to_ascii_lowercase()
        );
        (pointer, response)
    }

    /// Panics unless this response is one the document describes for `method template`: a listed
    /// status, contract headers it names, and a body of a listed media type that validates
    /// against its schema (JSON Schema 2020-12, formats checked).
    pub fn check(
        &self,
        method: &str,
        template: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) {
        let what = format!("{method} {template} -> {status}");
        let (pointer, response) = self.response(method, template, status);
        let documented: Vec<String> = response["headers"]
            .as_object()
            .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        for name in CONTRACT_HEADERS {
            if headers.contains_key(name) {
                assert!(
                    documented.iter().any(|d| d == name),
                    "{what}: sends {name}, which the document does not name (it names {documented:?})"
                );
            }
        }
        let content = response["content"].as_object();
        if body.is_empty() {
            assert!(
                content.is_none() || method == "HEAD",
                "{what}: no body, but the document describes one"
            );
            return;
        }
        let content_type = header(headers, "content-type").unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        let media = content
            .and_then(|c| c.get(essence))
            .unwrap_or_else(|| panic!("{what}: a {content_type:?} body, not documented"));
        let Some(_) = media.get("schema") else {
            return;
        };
        let escaped = essence.replace('~', "~0").replace('/', "~1");
        // A JSON pointer in a URI fragment: `{id}` percent-encoded (RFC 6901 §6).
        let fragment = format!("{pointer}/content/{escaped}/schema")
            .replace('{', "%7B")
            .replace('}', "%7D");
        let schema = serde_json::json!({ "$ref": format!("{DOC_URI}#{fragment}") });
        let validator = jsonschema::options()
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{what}: the documented schema does not build: {e}"));
        let value: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e})"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the body does not match the document: {errors:#?}\nbody: {value}"
        );
    }

    /// [`ApiDocument::check`] on a reqwest response; returns its status, headers and body.
    pub async fn checked(
        &self,
        method: &str,
        template: &str,
        res: Response,
    ) -> (u16, HeaderMap, bytes::Bytes) {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("the body");
        self.check(method, template, status, &headers, &body);
        (status, headers, body)
    }
}
