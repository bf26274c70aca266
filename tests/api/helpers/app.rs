//! The real app in this process: `Application::build_on` on a free port, over TLS, with its own
//! directory (a freshly generated dev CA, and the SQLite file) or its own PostgreSQL database
//! (`DELIVERY_API_TEST_ENGINE=postgres`, see `engine.rs`). What `main` runs, minus the process.

use std::sync::Arc;

use delivery_api::config::ServeArgs;
use delivery_api::startup::{AppHandle, Application, Listeners};
use delivery_api::store::Db;
use delivery_api::tls::dev_ca;
use tempfile::TempDir;

use super::{Api, database_url};

pub struct TestApp {
    /// How to reach it (`app.get_all()`, `app.base`, `app.client`…): see [`Api`].
    api: Api,
    /// The server's own database handle (SQLite or PostgreSQL).
    pub db: Db,
    /// Its database's URL (`sqlite://…/test.db` or `postgres://…`), for a second server or the CLI.
    pub db_url: String,
    pub authenticator: actix_web::web::Data<delivery_api::auth::Authenticator>,
    /// Its certificates and, on SQLite, its database file.
    pub dir: Arc<TempDir>,
    /// The demo page's URL, when started with [`spawn_app_with_page`].
    pub page: Option<String>,
    /// `http://ADDR/metrics`, when started with `--metrics-bind` (see [`TestApp::scrape`]).
    pub metrics: Option<String>,
    /// `http://ADDR`, the admin bind of `--test-support` (`POST /reset`, `/requests`).
    pub test_support: Option<String>,
    handle: AppHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
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
    let db_url = args.db.database_url.clone();

    let listeners = Listeners {
        api: std::net::TcpListener::bind(args.bind).expect("a free port"),
        demo_page,
    };
    let app = Application::build_on(args, listeners)
        .await
        .expect("the app starts");
    let api = Api::new(app.addr(), &dir.path().join(dev_ca::CA_CERT));
    let page = app
        .demo_page_addr()
        .map(|a| format!("http://localhost:{}/", a.port()));
    let metrics = app.metrics_addr().map(|a| format!("http://{a}/metrics"));
    let test_support = app.test_support_addr().map(|a| format!("http://{a}"));
    let db = app.db().clone();
    let authenticator = app.authenticator();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        api,
        db,
        db_url,
        authenticator,
        dir,
        page,
        metrics,
        test_support,
        handle,
        server,
    }
}
