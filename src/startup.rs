//! Builds the server from its flags: configuration checks, TLS, database, listener. `main` and the
//! tests both go through [`Application::build`], so the tests serve exactly what users run.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use anyhow::Context;

use crate::app::{self, AppState, MiddlewareOrder};
use crate::auth::Authenticator;
use crate::auth::cache::CredentialCache;
use crate::auth::limits::LoginLimits;
use crate::config::ServeArgs;
use crate::cors::{AllowedOrigin, CorsConfig};
use crate::exchanges::Exchanges;
use crate::harness::{self, Ephemeral};
use crate::metrics::{self, Metrics};
use crate::store::Db;
use crate::store::deliveries::Creator;
use crate::store::read_cache::ReadCache;
use crate::store::{self, users};
use crate::tls::TlsFiles;
use crate::{demo_page, net, routes};

pub struct Application {
    addr: SocketAddr,
    server: Server,
    demo: Option<(SocketAddr, Server)>,
    /// `--metrics-bind`: the plain-HTTP server of `GET /metrics`.
    metrics: Option<(SocketAddr, Server)>,
    db: Db,
    authenticator: web::Data<Authenticator>,
    /// What the ready line says (`harness.rs`), and where else to write it.
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
        let demo_page = if args.no_demo_page {
            None
        } else {
            demo_page::bind(args.demo_page_bind)
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
        let listeners = Listeners::bind(&args)?;
        Self::build_on(args, listeners).await
    }

    /// Like [`Application::build`], on sockets the caller has already bound.
    pub async fn build_on(mut args: ServeArgs, listeners: Listeners) -> anyhow::Result<Self> {
        if let Some(path) = &args.ready_file {
            // A harness polling for it must not read a previous run's.
            let _ = std::fs::remove_file(path);
        }
        // Checked (and bound) first: a refusal leaves nothing behind.
        let metrics_listener = args
            .metrics_bind
            .map(|addr| metrics::bind(addr, args.metrics_public))
            .transpose()?;
        let ephemeral = args.ephemeral.then(Ephemeral::create).transpose()?;
        if let Some(ephemeral) = &ephemeral {
            args.db.database_url = ephemeral.database_url();
        }
        let demo_origin = match &listeners.demo_page {
            Some(listener) => Some(demo_page::origin(listener.local_addr()?)),
            None => None,
        };
        let allowed_origins = with_demo_origin(&args.allowed_origins, demo_origin.as_deref());
        let cors = CorsConfig {
            origins: allowed_origins.clone(),
            allow_credentials: args.allow_credentials,
            max_age_secs: args.cors_max_age,
            allow_headers: args.allow_headers.clone(),
            expose_headers: args.expose_headers.clone(),
        };
        cors.validate().map_err(anyhow::Error::msg)?;
        // What the server saw of the demo page's requests, for the page to read back.
        let exchanges = match &listeners.demo_page {
            Some(listener) => Some(Exchanges::new(demo_page::origins(listener.local_addr()?))),
            None => None,
        };
        let base = ephemeral
            .as_ref()
            .map_or(std::path::Path::new(""), |e| e.dir());
        let tls_files = TlsFiles::resolve(base, args.cert.as_deref(), args.key.as_deref())?;
        let tls = tls_files.server_config()?;
        if let (Some(seed), Some(path)) = (&args.seed, store::database_path(&args.db.database_url)?)
            && path.exists()
        {
            anyhow::bail!(
                "--seed {} loads a new database, and {} already exists: remove it, give another \
                 --database-url, or use --ephemeral",
                seed.display(),
                store::shown_path(&path).display()
            );
        }
        let store::Connected {
            db,
            location,
            created,
        } = store::connect(&args.db.settings()).await?;
        if let Some(seed) = &args.seed {
            if !created {
                anyhow::bail!(
                    "--seed {} loads a new database, and the {location} already has data: give \
                     an empty database, or use --ephemeral",
                    seed.display()
                );
            }
            harness::seed(&db, seed).await?;
        }

        let order = if args.auth_before_cors {
            tracing::warn!(
                "!!! --auth-before-cors: Basic auth now runs BEFORE CORS. Browsers' preflights carry \
                 no credentials, so they get 401 and every cross-origin call fails with status 0. \
                 This reproduces the classic bug on purpose; never run it like this. !!!"
            );
            MiddlewareOrder::AuthBeforeCors
        } else {
            MiddlewareOrder::CorsBeforeAuth
        };
        let workers = args.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let cache = CredentialCache::new(
            args.auth_cache_size,
            Duration::from_secs(args.auth_cache_ttl),
        )?;
        let limits = LoginLimits::new(args.login_attempts_per_ip, args.login_attempts_per_user);
        let authenticator = web::Data::new(Authenticator::new(
            db.clone(),
            args.max_concurrent_verifications,
            cache,
            limits,
        ));
        authenticator.calibrate().await;
        let meters = metrics_listener
            .as_ref()
            .map(|_| Metrics::new())
            .transpose()?;
        let addr = listeners.api.local_addr()?;
        // The origin the API is announced as (the name in the dev certificate): the demo page
        // and the OpenAPI document's `servers` both call it so.
        let api_origin = format!("https://localhost:{}", addr.port());
        let state = AppState {
            db: db.clone(),
            authenticator: authenticator.clone(),
            read_cache: web::Data::new(ReadCache::default()),
            creator: web::Data::new(Creator::start(db.clone())),
            cors,
            order,
            body_timeout: net::BodyTimeout(Duration::from_secs(args.body_timeout)),
            exchanges: exchanges.clone(),
            metrics: meters.clone(),
            openapi: web::Data::new(routes::openapi::OpenApiJson::new(&api_origin)),
        };

        let demo_default = demo_has_default_password(&db).await?;
        if demo_default && !addr.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {addr}, reachable from other machines, while user `{user}` \
                 still has its published default password. Change it first:\n  \
                 printf '%s\\n' \"$NEW_PASSWORD\" | delivery-api user add {user} --password-stdin\n\
                 or remove it (delivery-api user remove {user}), or --bind 127.0.0.1:PORT",
                user = users::DEMO_USER
            );
        }
        let limits = net::Limits {
            per_client: args.max_connections_per_ip,
            handshakes_per_client: args.max_handshakes_per_ip,
            first_byte: Duration::from_secs(args.tls_first_byte_timeout),
            handshake: Duration::from_secs(args.tls_handshake_timeout),
            request_head: Duration::from_secs(args.request_timeout),
            keep_alive: Duration::from_secs(args.keep_alive),
            h2_streams: args.h2_max_streams,
            h2_header_list: args.h2_max_header_list,
            per_worker: args.max_connections,
        };
        let server = net::serve(
            listeners.api,
            tls,
            move || app::app(state.clone()),
            workers,
            args.shutdown_grace,
            limits,
        )?;
        let demo = match (listeners.demo_page, exchanges) {
            (Some(listener), Some(exchanges)) => {
                let demo_addr = listener.local_addr()?;
                let page = demo_page::Page {
                    api_base: api_origin.clone(),
                    allowed_origins: allowed_origins.iter().map(ToString::to_string).collect(),
                    exchanges,
                };
                Some((demo_addr, demo_page::serve(listener, page)?))
            }
            _ => None,
        };
        let metrics = match (metrics_listener, &meters) {
            (Some(listener), Some(meters)) => {
                Some((listener.local_addr()?, metrics::serve(listener, meters)?))
            }
            _ => None,
        };

        let origins: Vec<String> = args
            .allowed_origins
            .iter()
            .map(ToString::to_string)
            .collect();
        let page = match &demo_origin {
            Some(origin) => format!(
                "{origin} (always allowed: it is this program's page; opened as another origin, \
                 e.g. 127.0.0.1, it is not)"
            ),
            None => "off".to_owned(),
        };
        // One block: what a browser's requests will be checked against, and with what.
        tracing::info!(
            "serving https://{addr} (try: curl --cacert certs/dev-ca.crt https://localhost:{}/health)\n  \
             browsers are checked against:\n    \
             allowed origins:  {} (--allowed-origin)\n    \
             demo page origin: {page}\n    \
             database:         {}\n    \
             certificate:      {}",
            addr.port(),
            origins.join(", "),
            location,
            tls_files.describe(),
        );
        if let Some((demo_addr, _)) = &demo {
            tracing::info!(
                "demo page: {0}/ (a second origin; open it in a browser); API explorer: {0}/explorer/",
                demo_page::origin(*demo_addr)
            );
        }
        if let Some((metrics_addr, _)) = &metrics {
            tracing::info!(
                "metrics: http://{}/metrics (Prometheus text format)",
                dialable(*metrics_addr)
            );
        }
        print_login_hint(demo_default);
        let ready = serde_json::json!({
            "event": "ready",
            "api": format!("https://{}", dialable(addr)),
            "demo_page": demo.as_ref().map(|(a, _)| demo_page::origin(*a)),
            "metrics": metrics.as_ref().map(|(a, _)| format!("http://{}/metrics", dialable(*a))),
            "ca_cert": tls_files.dev_ca(),
            "cert": std::path::absolute(&tls_files.cert).ok(),
            "database": location.for_machines(),
            "pid": std::process::id(),
        });
        Ok(Self {
            addr,
            server,
            demo,
            metrics,
            db,
            authenticator,
            ready,
            ready_file: args.ready_file.clone(),
            _ephemeral: ephemeral,
        })
    }

    /// The ready line: one JSON object (`harness.rs`).
    pub fn ready_line(&self) -> String {
        self.ready.to_string()
    }

    /// Says the server is ready: the ready line on stdout, and in `--ready-file` if given.
    pub fn announce_ready(&self) -> anyhow::Result<()> {
        use std::io::Write as _;
        let line = self.ready_line();
        // The file first: whoever read the stdout line may look for the file next.
        if let Some(path) = &self.ready_file {
            harness::write_ready_file(path, &line)?;
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

    /// Stops the servers from outside (tests restart them on the same database).
    pub fn handle(&self) -> AppHandle {
        let mut servers = vec![self.server.handle()];
        servers.extend(self.side_servers().map(Server::handle));
        AppHandle { servers }
    }

    /// The plain-HTTP servers beside the API: the demo page, the metrics.
    fn side_servers(&self) -> impl Iterator<Item = &Server> {
        let demo = self.demo.as_ref().map(|(_, server)| server);
        demo.into_iter()
            .chain(self.metrics.as_ref().map(|(_, server)| server))
    }

    /// Serves until SIGINT/SIGTERM (in-flight requests get the grace period), then closes the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let side = self
            .demo
            .into_iter()
            .chain(self.metrics)
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

/// `addr` as a client on this machine dials it: an unspecified address (`0.0.0.0`, `[::]`) as
/// loopback, IPv6 in brackets.
fn dialable(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("{host}:{}", addr.port())
}

/// The allowed origins plus the demo page's own (unless `*` already covers it, or it is listed).
fn with_demo_origin(allowed: &[AllowedOrigin], demo: Option<&str>) -> Vec<AllowedOrigin> {
    let mut origins = allowed.to_vec();
    if let Some(demo) = demo {
        let demo = AllowedOrigin::Exact(demo.to_owned());
        if !origins.contains(&AllowedOrigin::Any) && !origins.contains(&demo) {
            origins.push(demo);
        }
    }
    origins
}

/// True while the seeded demo user still has its published password (one argon2, at start-up).
/// An error is an error, not "no": it must not let a public bind through unchecked.
async fn demo_has_default_password(db: &Db) -> anyhow::Result<bool> {
    let hash = users::password_hash(db, users::DEMO_USER)
        .await
        .context("cannot check whether user `demo` still has its default password")?;
    let Some(hash) = hash else {
        return Ok(false);
    };
    let check = tokio::task::spawn_blocking(move || {
        users::verify_password(Some(&hash), &users::DEMO_PASSWORD.into())
    });
    check.await.context("the default-password check failed")
}

/// Tells a newcomer how to log in, while the demo password is unchanged.
fn print_login_hint(demo_default: bool) {
    if demo_default {
        tracing::info!(
            "log in with user `{}` and password `{}` (change it: delivery-api user add {} --password-stdin)",
            users::DEMO_USER,
            users::DEMO_PASSWORD,
            users::DEMO_USER
        );
    } else {
        tracing::info!("log in with a user from `delivery-api user list`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_origin_is_added_once_and_never_beside_a_wildcard() {
        let exact = |o: &str| AllowedOrigin::Exact(o.to_owned());
        let default = [exact("http://localhost:4200")];
        assert_eq!(
            with_demo_origin(&default, Some("http://localhost:9711")),
            [
                exact("http://localhost:4200"),
                exact("http://localhost:9711")
            ]
        );
        assert_eq!(
            with_demo_origin(&default, Some("http://localhost:4200")),
            default
        );
        assert_eq!(with_demo_origin(&default, None), default);
        let any = [AllowedOrigin::Any];
        assert_eq!(with_demo_origin(&any, Some("http://localhost:9711")), any);
    }
}
