//! Builds the server from its flags, in named steps (`build_on` reads as the list): bind what
//! can be refused early, turn each group of flags into its layer's settings, open the database,
//! build the app's state, serve, announce. `main` and the tests both go through
//! [`Application::build`], so the tests serve exactly what users run. The servers beside the API
//! (demo page, metrics, test support) are `beside.rs`; the ready line `ready.rs`; `--ephemeral`
//! and `--seed` their own files.

mod beside;
mod ephemeral;
mod ready;
mod seed;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use anyhow::Context;

use crate::app::{self, AppState, MiddlewareOrder};
use crate::auth::Authenticator;
use crate::config::ServeArgs;
use crate::cors::CorsConfig;
use crate::metrics::{self, Metrics};
use crate::routes::delivery::cache::ReadCache;
use crate::store::deliveries::Creator;
use crate::store::{self, Db, users};
use crate::test_support;
use crate::tls::TlsFiles;
use crate::{access, demo_page, net, routes};
use beside::{DemoOrigins, serve_demo_page, serve_metrics, serve_test_support, test_support_bind};
use ephemeral::Ephemeral;

pub struct Application {
    addr: SocketAddr,
    server: Server,
    demo: Option<(SocketAddr, Server)>,
    /// `--metrics-bind`: the plain-HTTP server of `GET /metrics`.
    metrics: Option<(SocketAddr, Server)>,
    /// `--test-support`: the plain-HTTP server of `POST /reset` and `/requests`.
    test_support: Option<(SocketAddr, Server)>,
    db: Db,
    authenticator: web::Data<Authenticator>,
    /// What the ready line says (`ready.rs`), and where else to write it.
    ready: serde_json::Value,
    ready_file: Option<std::path::PathBuf>,
    /// `--ephemeral`: removed when the application is dropped, after the servers stop.
    _ephemeral: Option<Ephemeral>,
}

/// The sockets to serve on, bound before anything else so that tests can pick free ports.
pub struct Listeners {
    pub api: TcpListener,
    pub demo_page: Option<TcpListener>,
}

impl Listeners {
    pub fn bind(args: &ServeArgs) -> anyhow::Result<Self> {
        let api = TcpListener::bind(args.bind)
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let demo_page = if args.demo.no_demo_page {
            None
        } else {
            demo_page::bind(args.demo.demo_page_bind)
        };
        Ok(Self { api, demo_page })
    }
}

/// Stops both servers (the API and the demo page).
#[derive(Clone)]
pub struct AppHandle {
    servers: Vec<ServerHandle>,
}

impl AppHandle {
    pub async fn stop(&self, graceful: bool) {
        for server in &self.servers {
            server.stop(graceful).await;
        }
    }
}

impl Application {
    pub async fn build(args: ServeArgs) -> anyhow::Result<Self> {
        forget_the_ready_file(&args);
        let listeners = Listeners::bind(&args)?;
        Self::build_on(args, listeners).await
    }

    /// Like [`Application::build`], on sockets the caller has already bound. Each step is one
    /// function below; a refusal in any of them leaves nothing behind.
    pub async fn build_on(args: ServeArgs, listeners: Listeners) -> anyhow::Result<Self> {
        forget_the_ready_file(&args);
        // Registered before anything is served: from then on every catchable signal is a
        // graceful stop that cleans up, never the default action that leaves files behind.
        let signals = net::signals::Signals::listen()?;
        // Checked (and bound) first: a refusal leaves nothing behind.
        let metrics_listener = (args.operating.metrics_bind)
            .map(|addr| metrics::bind(addr, args.operating.metrics_public))
            .transpose()?;
        let support_listener = test_support_bind(&args, &listeners)?;
        let ephemeral = args.harness.ephemeral.then(Ephemeral::create).transpose()?;
        let pages = DemoOrigins::of(&listeners)?;
        let testing = support_listener.is_some();
        let cors = cors_settings(&args, pages.origin.as_deref(), testing)?;
        let base = ephemeral.as_ref().map_or(Path::new(""), Ephemeral::dir);
        let tls_files = TlsFiles::resolve(base, args.tls.cert.as_deref(), args.tls.key.as_deref())?;
        let tls = tls_files.server_config()?;
        let (db, location, seed) = open_store(&args, ephemeral.as_ref()).await?;

        let addr = listeners.api.local_addr()?;
        let demo_default = refuse_a_public_bind_with_the_published_password(&db, addr).await?;
        let (authenticator, limits) = authentication(&args, &db, testing).await?;
        let meters = metrics_listener
            .as_ref()
            .map(|_| Metrics::new())
            .transpose()?;
        // The origin the API is announced as (the name in the dev certificate): the demo page
        // and the OpenAPI document's `servers` both call it so.
        let api_origin = format!("https://localhost:{}", addr.port());
        let state = AppState {
            db: db.clone(),
            authenticator: authenticator.clone(),
            read_cache: web::Data::new(ReadCache::default()),
            creator: web::Data::new(Creator::start(db.clone())),
            cors: cors.clone(),
            order: middleware_order(args.auth_before_cors),
            body_timeout: args.connections.body_timeout(),
            exchanges: pages.exchanges.clone(),
            metrics: meters.clone(),
            openapi: web::Data::new(routes::openapi::OpenApiJson::new(&api_origin)),
            access_log: access::AccessLog(args.operating.access_log),
            test_support: support_listener.as_ref().map(|_| Arc::default()),
        };
        let request_log = state.test_support.clone();

        let server = net::serve(
            listeners.api,
            tls,
            move || app::app(state.clone()),
            workers(args.workers),
            args.shutdown_grace,
            limits,
        )?;
        let demo = serve_demo_page(listeners.demo_page, pages.exchanges, &api_origin, &cors)?;
        let metrics = serve_metrics(
            metrics_listener,
            meters.as_ref(),
            args.operating.metrics_public,
        )?;
        let test_support = serve_test_support(support_listener, &db, request_log, seed)?;

        let served = ready::Served {
            api: addr,
            demo_page: demo.as_ref().map(|(a, _)| *a),
            metrics: metrics.as_ref().map(|(a, _)| *a),
            test_support: test_support.as_ref().map(|(a, _)| *a),
            tls: &tls_files,
            database: &location,
            allowed_origins: &args.cors.allowed_origins,
            demo_default,
        };
        served.log();
        let app = Self {
            addr,
            server,
            demo,
            metrics,
            test_support,
            db,
            authenticator,
            ready: served.ready_line(),
            ready_file: args.harness.ready_file.clone(),
            _ephemeral: ephemeral,
        };
        let handle = app.handle();
        tokio::spawn(signals.stop(args.shutdown_grace, move || async move {
            handle.stop(true).await;
        }));
        Ok(app)
    }

    /// The ready line: one JSON object (`ready.rs`).
    pub fn ready_line(&self) -> String {
        self.ready.to_string()
    }

    /// Says the server is ready: the ready line on stdout, and in `--ready-file` if given.
    pub fn announce_ready(&self) -> anyhow::Result<()> {
        use std::io::Write as _;
        let line = self.ready_line();
        // The file first: whoever read the stdout line may look for the file next.
        if let Some(path) = &self.ready_file {
            ready::write_ready_file(path, &line)?;
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").and_then(|()| out.flush())?;
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The server's database (tests use it to arrange data and inspect what was written).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The Basic-auth checker (tests read how many argon2 verifications ran).
    pub fn authenticator(&self) -> web::Data<Authenticator> {
        self.authenticator.clone()
    }

    /// Where the demo page is served, if it is.
    pub fn demo_page_addr(&self) -> Option<SocketAddr> {
        self.demo.as_ref().map(|(addr, _)| *addr)
    }

    /// Where `GET /metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
    }

    /// Where `--test-support` serves `POST /reset` and `/requests`, if it does.
    pub fn test_support_addr(&self) -> Option<SocketAddr> {
        self.test_support.as_ref().map(|(addr, _)| *addr)
    }

    /// Stops the servers from outside (tests restart them on the same database).
    pub fn handle(&self) -> AppHandle {
        let mut servers = vec![self.server.handle()];
        servers.extend(self.side_servers().map(Server::handle));
        AppHandle { servers }
    }

    /// The plain-HTTP servers beside the API: the demo page, the metrics, test support.
    fn side_servers(&self) -> impl Iterator<Item = &Server> {
        let demo = self.demo.as_ref().map(|(_, server)| server);
        demo.into_iter()
            .chain(self.metrics.as_ref().map(|(_, server)| server))
            .chain(self.test_support.as_ref().map(|(_, server)| server))
    }

    /// Serves until SIGINT/SIGTERM (in-flight requests get the grace period), then closes the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let side = self
            .demo
            .into_iter()
            .chain(self.metrics)
            .chain(self.test_support)
            .map(|(_, server)| server);
        let side = futures_util::future::try_join_all(side);
        let result = tokio::try_join!(self.server, side).map(|_| ());
        self.db.close().await;
        if let Some(path) = &self.ready_file {
            let _ = std::fs::remove_file(path);
        }
        result
    }
}

/// A harness polling for the ready file must not read a previous run's, nor one left by a start
/// that then failed.
fn forget_the_ready_file(args: &ServeArgs) {
    if let Some(path) = &args.harness.ready_file {
        let _ = std::fs::remove_file(path);
    }
}

/// Opens (creating and migrating) the database, and loads `--seed` into it. A seed goes only into
/// a new database: an existing file is refused before anything is opened, the seed file is
/// checked before the database is created, and a new SQLite file whose seeding fails is removed
/// again, so that a corrected retry finds nothing in its way.
async fn open_database(
    settings: &store::Settings,
    seed: Option<&Path>,
) -> anyhow::Result<(Db, store::Location, Option<seed::Seed>)> {
    if let (Some(seed), Some(path)) = (seed, store::database_path(&settings.url)?)
        && path.exists()
    {
        anyhow::bail!(
            "--seed {} loads a new database, and {} already exists: remove it, give another \
             --database-url, or use --ephemeral",
            seed.display(),
            store::shown_path(&path).display()
        );
    }
    let seed = seed.map(seed::read).transpose()?;
    let connected = store::connect(settings).await?;
    let Some(seed) = seed else {
        return Ok((connected.db, connected.location, None));
    };
    if !connected.created {
        anyhow::bail!(
            "--seed loads a new database, and the {} already has data: give an empty database, \
             or use --ephemeral",
            connected.location
        );
    }
    if let Err(e) = seed::load(&connected.db, &seed).await {
        store::discard_new(connected).await;
        return Err(e);
    }
    Ok((connected.db, connected.location, Some(seed)))
}

/// The CORS policy from its flags, with the test-support header when that is on; checked.
fn cors_settings(
    args: &ServeArgs,
    demo_origin: Option<&str>,
    testing: bool,
) -> anyhow::Result<CorsConfig> {
    let mut cors = args.cors.settings(demo_origin);
    if testing {
        test_support::allow_prefer(&mut cors);
    }
    cors.validate().map_err(anyhow::Error::msg)?;
    Ok(cors)
}

/// The database the flags (or `--ephemeral`) name, opened, migrated and seeded.
async fn open_store(
    args: &ServeArgs,
    ephemeral: Option<&Ephemeral>,
) -> anyhow::Result<(Db, store::Location, Option<seed::Seed>)> {
    let mut database = args.db.settings();
    if let Some(ephemeral) = ephemeral {
        database.url = ephemeral.database_url();
    }
    open_database(&database, args.harness.seed.as_deref()).await
}

/// The authenticator (calibrated) and the connection limits, both lifted under test support.
async fn authentication(
    args: &ServeArgs,
    db: &Db,
    testing: bool,
) -> anyhow::Result<(web::Data<Authenticator>, net::Limits)> {
    let (mut auth_settings, mut limits) = (args.auth.settings(), args.connections.limits());
    if testing {
        test_support::lift_limits(&mut auth_settings, &mut limits);
    }
    let authenticator = web::Data::new(Authenticator::with_settings(db.clone(), &auth_settings)?);
    authenticator.calibrate().await;
    Ok((authenticator, limits))
}

/// `--auth-before-cors` swaps the layers, loudly.
fn middleware_order(auth_before_cors: bool) -> MiddlewareOrder {
    if !auth_before_cors {
        return MiddlewareOrder::CorsBeforeAuth;
    }
    tracing::warn!(
        "!!! --auth-before-cors: Basic auth now runs BEFORE CORS. Browsers' preflights carry \
         no credentials, so they get 401 and every cross-origin call fails with status 0. \
         This reproduces the classic bug on purpose; never run it like this. !!!"
    );
    MiddlewareOrder::AuthBeforeCors
}

fn workers(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    })
}

/// Refuses to serve other machines while the demo user still has its published password; says
/// whether it has (one argon2, at start-up). An error is an error, not "no": it must not let a
/// public bind through unchecked.
async fn refuse_a_public_bind_with_the_published_password(
    db: &Db,
    addr: SocketAddr,
) -> anyhow::Result<bool> {
    let hash = users::password_hash(db, users::DEMO_USER)
        .await
        .context("cannot check whether user `demo` still has its default password")?;
    let demo_default = match hash {
        None => false,
        Some(hash) => tokio::task::spawn_blocking(move || {
            users::verify_password(Some(&hash), &users::DEMO_PASSWORD.into())
        })
        .await
        .context("the default-password check failed")?,
    };
    if demo_default && !addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {addr}, reachable from other machines, while user `{user}` \
             still has its published default password. Change it first:\n  \
             printf '%s\\n' \"$NEW_PASSWORD\" | delivery-api user add {user} --password-stdin\n\
             or remove it (delivery-api user remove {user}), or --bind 127.0.0.1:PORT",
            user = users::DEMO_USER
        );
    }
    Ok(demo_default)
}
