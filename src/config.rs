//! The command line is the whole configuration: every flag has an environment fallback, and the doc
//! comments below are the `--help` text. Defaults live here and nowhere else. Over 400 lines as one
//! table: one `Args` struct per concern, each converted once into its layer's settings type.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cors::{AllowedOrigin, CorsConfig};

/// The origin an Angular dev server (`ng serve`) runs on, allowed unless `--allowed-origin` says otherwise.
pub const DEFAULT_ORIGIN: &str = "http://localhost:4200";

pub use crate::preflight::{PREFLIGHT_EXIT_CODES, PreflightArgs};
pub use crate::telemetry::LogFormat;

/// A reference backend that answers CORS preflights before HTTP Basic auth.
#[derive(Debug, Parser)]
#[command(name = "delivery-api", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// With no subcommand, `delivery-api` serves (same flags as `delivery-api serve`).
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
// Parsed once at start-up: the size of a variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve the HTTPS API (the default).
    Serve(ServeArgs),
    /// Manage the users allowed to log in with HTTP Basic auth.
    #[command(subcommand)]
    User(UserCommand),
    /// Replay a browser's CORS check (preflight, then the request) against any URL, and name the
    /// rule that fails. Exit status 0 only when a browser would let the page read the response.
    #[command(after_help = PREFLIGHT_EXIT_CODES)]
    Preflight(PreflightArgs),
    /// Copy every user (password hashes as they are) and delivery (ids and timestamps kept) from
    /// one database into a new one: SQLite to PostgreSQL when a second instance is coming, or
    /// back. The target must be new: a SQLite file is created and migrated here, a PostgreSQL
    /// database must exist and be empty (createdb). The source is only read.
    CopyData(CopyDataArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CopyDataArgs {
    /// The database to read, e.g. sqlite://data/delivery.db (it must exist; it is not changed).
    #[arg(long, env = "DELIVERY_API_COPY_FROM", hide_env_values = true)]
    pub from: String,
    /// The new database to fill, e.g. postgres://app@db.example:5432/deliveries. Default: the
    /// environment's DATABASE_URL (keeps a password out of the command line and `ps`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub to: String,
}

/// The `serve` flags (also `delivery-api` with no subcommand), grouped by the layer each one
/// configures; `--help` shows them under the same headings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve HTTPS on. Plain HTTP is not offered.
    #[arg(long, env = "DELIVERY_API_BIND", default_value = "127.0.0.1:8443")]
    pub bind: SocketAddr,

    /// TEACHING ONLY: put Basic auth in front of CORS, which reproduces the classic bug
    /// (the credential-less preflight gets 401 and the browser blocks the request).
    #[arg(long, env = "DELIVERY_API_AUTH_BEFORE_CORS")]
    pub auth_before_cors: bool,

    /// Worker threads (default: one per CPU core).
    #[arg(long, env = "DELIVERY_API_WORKERS")]
    pub workers: Option<usize>,

    /// Seconds to finish in-flight requests after SIGTERM/SIGINT.
    #[arg(long, env = "DELIVERY_API_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,

    #[command(flatten)]
    pub cors: CorsArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub db: DatabaseArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub connections: ConnectionArgs,

    #[command(flatten)]
    pub demo: DemoPageArgs,

    #[command(flatten)]
    pub operating: OperatingArgs,

    #[command(flatten)]
    pub harness: HarnessArgs,
}

/// What a browser's cross-origin requests are checked against (`cors::CorsConfig`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "CORS: what browsers may send and read")]
pub struct CorsArgs {
    /// A browser origin allowed to call the API (scheme://host[:port], exact match). Repeatable.
    /// The demo page's own origin is always allowed as well (see --demo-page-bind).
    #[arg(
        long = "allowed-origin",
        env = "DELIVERY_API_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = DEFAULT_ORIGIN
    )]
    pub allowed_origins: Vec<AllowedOrigin>,

    /// Answer `Access-Control-Allow-Credentials: true`, so pages that use `withCredentials: true`
    /// (Fetch credentials mode "include") can read responses too.
    #[arg(
        long,
        env = "DELIVERY_API_ALLOW_CREDENTIALS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub allow_credentials: bool,

    /// A request header pages may send, besides the defaults (Authorization, Content-Type, Accept,
    /// X-Requested-With, If-None-Match), e.g. X-Request-Id or X-XSRF-TOKEN. Repeatable.
    /// `*` only without credentials: the Fetch standard's `*` never covers Authorization.
    #[arg(
        long = "allow-header",
        env = "DELIVERY_API_ALLOW_HEADERS",
        value_delimiter = ',',
        value_parser = crate::cors::HeaderRule::parse
    )]
    pub allow_headers: Vec<crate::cors::HeaderRule>,

    /// A response header pages may read, besides the defaults (WWW-Authenticate, Location,
    /// Retry-After, ETag, Link, X-Total-Count). Repeatable. `*` only without credentials.
    #[arg(
        long = "expose-header",
        env = "DELIVERY_API_EXPOSE_HEADERS",
        value_delimiter = ',',
        value_parser = crate::cors::HeaderRule::parse
    )]
    pub expose_headers: Vec<crate::cors::HeaderRule>,

    /// How long (seconds) a browser may cache a successful preflight. Chromium caps it at 7200.
    #[arg(long, env = "DELIVERY_API_CORS_MAX_AGE", default_value_t = 600)]
    pub cors_max_age: usize,
}

/// Basic auth's remembered logins and its limits on password checks (`auth::Settings`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Basic auth: remembered logins and login limits")]
pub struct AuthArgs {
    /// Seconds a successful login is remembered, so argon2 does not run on every request. Any change
    /// to users (even from `delivery-api user` in another process) drops all of them at once: the
    /// next request sees it.
    #[arg(long, env = "DELIVERY_API_AUTH_CACHE_TTL", default_value_t = 300)]
    pub auth_cache_ttl: u64,

    /// How many distinct logins are remembered at most (least recently used ones go first).
    #[arg(long, env = "DELIVERY_API_AUTH_CACHE_SIZE", default_value_t = 10_000)]
    pub auth_cache_size: usize,

    /// Logins that need a password check, per client IP per minute (also the burst). Past it: 429.
    #[arg(long, env = "DELIVERY_API_LOGIN_ATTEMPTS_PER_IP", default_value = "10")]
    pub login_attempts_per_ip: std::num::NonZeroU32,

    /// Logins that need a password check, per user name per minute, from all new IPs together
    /// (and as many from each network the user logged in from within 7 days).
    #[arg(
        long,
        env = "DELIVERY_API_LOGIN_ATTEMPTS_PER_USER",
        default_value = "20"
    )]
    pub login_attempts_per_user: std::num::NonZeroU32,

    /// argon2 password checks allowed to run at once (each takes a core for ~20 ms and 19 MiB),
    /// so that guessing cannot take every core from the requests of signed-in users.
    #[arg(
        long,
        env = "DELIVERY_API_MAX_CONCURRENT_VERIFICATIONS",
        default_value_t = 1
    )]
    pub max_concurrent_verifications: usize,
}

/// The certificate served (`tls::TlsFiles`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// PEM certificate chain. Default: certs/localhost.crt, generated with a dev CA when missing.
    #[arg(long, env = "DELIVERY_API_TLS_CERT", requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key for --cert. Default: certs/localhost.key, generated when missing.
    #[arg(long, env = "DELIVERY_API_TLS_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
}

/// What one connection and one client may hold, and for how long (`net::Limits`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connections: what one client may hold, and for how long")]
pub struct ConnectionArgs {
    /// Open connections per worker thread; further clients wait in the listen queue.
    #[arg(long, env = "DELIVERY_API_MAX_CONNECTIONS", default_value_t = 2048)]
    pub max_connections: usize,

    /// Open connections per client (an IPv4 address, or an IPv6 /64); more are closed at once.
    #[arg(
        long,
        env = "DELIVERY_API_MAX_CONNECTIONS_PER_IP",
        default_value_t = 64
    )]
    pub max_connections_per_ip: u32,

    /// TLS handshakes one client may have in progress at once; its further connections wait
    /// their turn (within --tls-first-byte-timeout), then are closed.
    #[arg(long, env = "DELIVERY_API_MAX_HANDSHAKES_PER_IP", default_value_t = 8)]
    pub max_handshakes_per_ip: u32,

    /// Seconds a new connection has to send the first byte of its TLS ClientHello.
    #[arg(long, env = "DELIVERY_API_TLS_FIRST_BYTE_TIMEOUT", default_value_t = 2)]
    pub tls_first_byte_timeout: u64,

    /// Seconds a client has to finish the TLS handshake.
    #[arg(long, env = "DELIVERY_API_TLS_HANDSHAKE_TIMEOUT", default_value_t = 3)]
    pub tls_handshake_timeout: u64,

    /// Seconds a client has to send a complete request head; slower clients get 408 and are cut.
    #[arg(long, env = "DELIVERY_API_REQUEST_TIMEOUT", default_value_t = 5)]
    pub request_timeout: u64,

    /// Seconds a request body has to arrive in full, from the end of the request head; slower
    /// bodies get 408 and the connection (or HTTP/2 stream) is closed.
    #[arg(long, env = "DELIVERY_API_BODY_TIMEOUT", default_value_t = 10)]
    pub body_timeout: u64,

    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "DELIVERY_API_KEEP_ALIVE", default_value_t = 5)]
    pub keep_alive: u64,

    /// HTTP/2 streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "DELIVERY_API_H2_MAX_STREAMS", default_value_t = 128)]
    pub h2_max_streams: u32,

    /// Bytes of decoded request headers accepted over HTTP/2 (SETTINGS_MAX_HEADER_LIST_SIZE); past
    /// it: 431, as HTTP/1.1 does for a head over 128 KiB.
    #[arg(
        long,
        env = "DELIVERY_API_H2_MAX_HEADER_LIST",
        default_value_t = 65_536
    )]
    pub h2_max_header_list: u32,
}

/// The demo page, a second origin that calls the API from a browser.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Demo page")]
pub struct DemoPageArgs {
    /// Where to serve the demo page: a second origin (plain HTTP) that calls the API from a browser.
    /// Its own origin (http://localhost:PORT on a loopback address) is always allowed, so moving
    /// it (e.g. 127.0.0.1:9711 when 4200 is taken) keeps working; opened as another origin
    /// (http://127.0.0.1:PORT) it is refused, as any unlisted origin is.
    #[arg(
        long,
        env = "DELIVERY_API_DEMO_PAGE_BIND",
        default_value = "127.0.0.1:4200"
    )]
    pub demo_page_bind: SocketAddr,

    /// Do not serve the demo page.
    #[arg(long, env = "DELIVERY_API_NO_DEMO_PAGE")]
    pub no_demo_page: bool,
}

/// Logs and metrics.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logs and metrics")]
pub struct OperatingArgs {
    /// How log lines are written on stderr: `text` for people, `json` (one JSON object per line)
    /// for a log pipeline. The ready line on stdout is JSON either way.
    #[arg(long, env = "DELIVERY_API_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// One log line per request (method, path, status, the layer that answered, milliseconds),
    /// under the target `delivery_api::access`, in --log-format. Every response carries its
    /// request id (`X-Request-Id`: the client's, if plausible) either way.
    #[arg(long, env = "DELIVERY_API_ACCESS_LOG")]
    pub access_log: bool,

    /// Serve Prometheus metrics (GET /metrics, plain HTTP) on this address, e.g. 127.0.0.1:9464.
    /// Off unless given. Only a loopback address, unless --metrics-public is given too.
    #[arg(long, env = "DELIVERY_API_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Allow --metrics-bind on an address other machines can reach. /metrics is plain HTTP with
    /// no authentication: keep it behind a firewall or on a scraper-only network.
    #[arg(long, env = "DELIVERY_API_METRICS_PUBLIC", requires = "metrics_bind")]
    pub metrics_public: bool,
}

/// Starting under a test harness: the ready file, a throwaway database, your own data.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Under a test harness")]
pub struct HarnessArgs {
    /// Once serving, also write the ready line (the JSON object printed on stdout: api URL, demo
    /// page, metrics URL, CA certificate, database) to this file; removed at exit. For test harnesses.
    #[arg(long, env = "DELIVERY_API_READY_FILE")]
    pub ready_file: Option<PathBuf>,

    /// Run on a throwaway database (and throwaway dev certificates unless --cert is given) in a
    /// new temporary directory, removed at exit. Overrides --database-url / DATABASE_URL.
    #[arg(long, env = "DELIVERY_API_EPHEMERAL")]
    pub ephemeral: bool,

    /// Load deliveries (and users, with their passwords) from this JSON file into a new database
    /// instead of the built-in sample: {"deliveries": [{"reference", "recipient", "address",
    /// "status"?}], "users": [{"name", "password"}]}. Without "users" the demo user stays.
    #[arg(long, env = "DELIVERY_API_SEED")]
    pub seed: Option<PathBuf>,

    /// For a test suite on this machine (refused unless --bind is a loopback address): `Prefer:
    /// code=503, delay=250` injects a fault or a delay into a request; POST /reset puts the seed
    /// back and GET /requests?request_id=ID reads the request log, on --test-support-bind; the
    /// login and per-client connection limits are lifted. See docs/test-support.md.
    #[arg(long, env = "DELIVERY_API_TEST_SUPPORT")]
    pub test_support: bool,

    /// Where --test-support serves POST /reset, GET and DELETE /requests: plain HTTP, a loopback
    /// address only. Port 0 picks a free port, named in the ready line (`test_support`).
    #[arg(
        long,
        env = "DELIVERY_API_TEST_SUPPORT_BIND",
        default_value = "127.0.0.1:0",
        requires = "test_support"
    )]
    pub test_support_bind: SocketAddr,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// The database: `sqlite://PATH` (created and migrated on first start) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (migrated on start; shared by several instances).
    #[arg(
        long,
        env = "DATABASE_URL",
        // A postgres:// URL may hold a password: `--help` must not print the environment's.
        hide_env_values = true,
        default_value = "sqlite://data/delivery.db"
    )]
    pub database_url: String,

    /// How long (milliseconds) a query waits for another writer's lock before giving up with 503.
    #[arg(long, env = "DELIVERY_API_DB_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    pub db_busy_timeout_ms: u64,
}

impl DatabaseArgs {
    /// The store's own settings type.
    pub fn settings(&self) -> crate::store::Settings {
        crate::store::Settings {
            url: self.database_url.clone(),
            busy_timeout: std::time::Duration::from_millis(self.db_busy_timeout_ms),
        }
    }
}

impl CorsArgs {
    /// The CORS layer's settings: these origins, plus the demo page's own (`demo_origin`) unless
    /// `*` already covers it or it is listed.
    pub fn settings(&self, demo_origin: Option<&str>) -> CorsConfig {
        let mut origins = self.allowed_origins.clone();
        if let Some(demo) = demo_origin {
            let demo = AllowedOrigin::Exact(demo.to_owned());
            if !origins.contains(&AllowedOrigin::Any) && !origins.contains(&demo) {
                origins.push(demo);
            }
        }
        CorsConfig {
            origins,
            allow_credentials: self.allow_credentials,
            max_age_secs: self.cors_max_age,
            allow_headers: self.allow_headers.clone(),
            expose_headers: self.expose_headers.clone(),
        }
    }
}

impl AuthArgs {
    pub fn settings(&self) -> crate::auth::Settings {
        crate::auth::Settings {
            cache_ttl: Duration::from_secs(self.auth_cache_ttl),
            cache_size: self.auth_cache_size,
            attempts_per_ip: self.login_attempts_per_ip,
            attempts_per_user: self.login_attempts_per_user,
            max_concurrent_verifications: self.max_concurrent_verifications,
        }
    }
}

impl ConnectionArgs {
    pub fn limits(&self) -> crate::net::Limits {
        crate::net::Limits {
            per_client: self.max_connections_per_ip,
            handshakes_per_client: self.max_handshakes_per_ip,
            first_byte: Duration::from_secs(self.tls_first_byte_timeout),
            handshake: Duration::from_secs(self.tls_handshake_timeout),
            request_head: Duration::from_secs(self.request_timeout),
            keep_alive: Duration::from_secs(self.keep_alive),
            h2_streams: self.h2_max_streams,
            h2_header_list: self.h2_max_header_list,
            per_worker: self.max_connections,
        }
    }

    pub fn body_timeout(&self) -> crate::net::BodyTimeout {
        crate::net::BodyTimeout(Duration::from_secs(self.body_timeout))
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, or replace its password. The password is read from standard input.
    Add {
        name: String,
        /// Read the password from the first line of standard input (required: never pass it as an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List user names.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove a user.
    Remove {
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

impl ServeArgs {
    /// The flags as if none were given and no `DELIVERY_API_*` / `DATABASE_URL` variable were set:
    /// what a bare `cargo run --release` uses on a clean machine. Tests start from here, so a
    /// developer's environment never leaks into them.
    pub fn defaults() -> Self {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let command = Cli::command().mut_args(|arg| arg.env(None::<&str>));
        let parsed = command
            .try_get_matches_from(["delivery-api"])
            .and_then(|matches| Cli::from_arg_matches(&matches));
        match parsed {
            Ok(cli) => cli.serve,
            // The defaults above are valid by construction (a unit test parses them).
            Err(e) => e.exit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_ignore_the_environment() {
        // SAFETY: this test alone touches these variables, before reading them.
        unsafe {
            std::env::set_var("DELIVERY_API_BIND", "not an address");
            std::env::set_var("DELIVERY_API_BODY_TIMEOUT", "9999");
        }
        let args = ServeArgs::defaults();
        unsafe {
            std::env::remove_var("DELIVERY_API_BIND");
            std::env::remove_var("DELIVERY_API_BODY_TIMEOUT");
        }
        assert_eq!(args.bind, "127.0.0.1:8443".parse().expect("addr"));
        assert_eq!(args.connections.body_timeout, 10);
    }
}
