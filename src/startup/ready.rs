//! Saying the server is ready, once it serves: the start-up lines for people (stderr), and the
//! ready line for machines (one JSON object on stdout, and optionally `--ready-file`, written whole
//! and renamed into place so a poller never reads half of it; removed at exit). With
//! `--bind 127.0.0.1:0` it is how a harness learns the port.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use crate::config::DEFAULT_ORIGIN;
use crate::cors::AllowedOrigin;
use crate::demo_page;
use crate::store::{Location, users};
use crate::tls::TlsFiles;

/// The start-up lines keep the target they always had (`RUST_LOG=delivery_api::startup=…`).
const TARGET: &str = "delivery_api::startup";

/// What is being served, as the announcements tell it.
pub struct Served<'a> {
    pub api: SocketAddr,
    pub demo_page: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    /// `--test-support`'s admin bind.
    pub test_support: Option<SocketAddr>,
    pub tls: &'a TlsFiles,
    pub database: &'a Location,
    /// `--allowed-origin`, as given (the demo page's origin is shown on its own line).
    pub allowed_origins: &'a [AllowedOrigin],
    /// The demo user still has its published password.
    pub demo_default: bool,
}

impl Served<'_> {
    /// The start-up lines: what browsers' requests are checked against, where the page and the
    /// metrics are, and how to log in.
    pub fn log(&self) {
        let origins: Vec<String> = self
            .allowed_origins
            .iter()
            .map(ToString::to_string)
            .collect();
        // Name the flag as the way to change the list, not as if someone had passed it.
        let flag = if origins == [DEFAULT_ORIGIN] {
            "the default; change it with --allowed-origin"
        } else {
            "--allowed-origin"
        };
        let page = match self.demo_page {
            Some(addr) => format!(
                "{} (always allowed: it is this program's page; opened as another origin, \
                 e.g. 127.0.0.1, it is not)",
                demo_page::origin(addr)
            ),
            None => "off".to_owned(),
        };
        // One block: what a browser's requests will be checked against, and with what.
        tracing::info!(
            target: TARGET,
            "serving https://{addr} (try: curl {cacert}https://localhost:{}/health)\n  \
             browsers are checked against:\n    \
             allowed origins:  {} ({flag})\n    \
             demo page origin: {page}\n    \
             database:         {}\n    \
             certificate:      {}",
            self.api.port(),
            origins.join(", "),
            self.database,
            self.tls.describe(),
            addr = self.api,
            cacert = self.cacert_flag(),
        );
        if let Some(addr) = self.demo_page {
            tracing::info!(
            target: TARGET,
                "demo page: {0}/ (a second origin; open it in a browser); API explorer: {0}/explorer/",
                demo_page::origin(addr)
            );
        }
        if let Some(addr) = self.metrics {
            tracing::info!(
            target: TARGET,
                "metrics: http://{}/metrics (Prometheus text format)",
                dialable(addr)
            );
        }
        if let Some(addr) = self.test_support {
            tracing::warn!(
                target: TARGET,
                "!!! --test-support is ON: for a test suite on this machine, never a shared \
                 server. `Prefer: code=503, delay=250` injects faults and delays; POST \
                 http://{0}/reset puts the seed back; GET http://{0}/requests?request_id=ID \
                 reads the request log; the login and per-client connection limits are lifted. !!!",
                dialable(addr)
            );
        }
        if self.demo_default {
            tracing::info!(
            target: TARGET,
                "log in with user `{}` and password `{}` (change it: delivery-api user add {} --password-stdin)",
                users::DEMO_USER,
                users::DEMO_PASSWORD,
                users::DEMO_USER
            );
        } else {
            tracing::info!(
                target: TARGET,
                "log in with a user from `delivery-api user list --database-url {}`",
                self.database_url()
            );
        }
    }

    /// `--cacert PATH ` for the curl hint: the dev CA this start uses (relative to the working
    /// directory when it is under it, as `certs/dev-ca.crt`), or nothing for another certificate.
    fn cacert_flag(&self) -> String {
        let Some(ca) = self.tls.dev_ca() else {
            return String::new();
        };
        let here = std::env::current_dir().ok();
        let shown = here
            .as_deref()
            .and_then(|here| ca.strip_prefix(here).ok())
            .unwrap_or(&ca);
        format!("--cacert {} ", shown.display())
    }

    /// The database as `--database-url` names it (a file as `sqlite://PATH`; no password).
    fn database_url(&self) -> String {
        match self.database {
            Location::File(_) => format!("sqlite://{}", self.database.for_machines()),
            Location::Server { .. } => self.database.for_machines(),
        }
    }

    /// The ready line: one JSON object.
    pub fn ready_line(&self) -> serde_json::Value {
        serde_json::json!({
            "event": "ready",
            "api": format!("https://{}", dialable(self.api)),
            "demo_page": self.demo_page.map(demo_page::origin),
            "metrics": self.metrics.map(|a| format!("http://{}/metrics", dialable(a))),
            "test_support": self.test_support.map(|a| format!("http://{}", dialable(a))),
            "ca_cert": self.tls.dev_ca(),
            "cert": std::path::absolute(&self.tls.cert).ok(),
            "database": self.database.for_machines(),
            "pid": std::process::id(),
        })
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

/// Writes `line` to `path` whole: into a new temporary file in the same directory, created
/// exclusively under a random name (so no link planted there is ever followed), then renamed
/// over `path`.
pub fn write_ready_file(path: &Path, line: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let write = || -> std::io::Result<()> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".ready-");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let mut file = builder.tempfile_in(dir)?;
        writeln!(file, "{line}")?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().with_context(|| format!("cannot write the ready file {}", path.display()))
}
