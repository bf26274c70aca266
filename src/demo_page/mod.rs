//! A small static page on a *second origin* (default http://localhost:4200, where an Angular dev
//! server would run), so a browser makes real cross-origin calls to the API. Plain HTTP on purpose:
//! the page's origin is `http://…`, the API's is `https://…`, exactly as in the article.
//!
//! `GET /exchanges` (this bind only, same-origin for the page) returns what the API saw of the
//! page's requests (`exchanges.rs`), so the page can say *why* a call failed, not just "status 0".
//! `/explorer/` is Swagger UI on the same origin, a second cross-origin client (`explorer.rs`).

mod explorer;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use serde::Deserialize;

use crate::exchanges::{Exchange, Exchanges};
use crate::fetch::{self, CorsRequest, SeenResponse};
use crate::net::{KnownHosts, only_known_hosts};

const PAGE: &str = include_str!("index.html");

/// Binds the demo page's address; `None` (with the reason logged) if it is taken, since the API
/// must start anyway.
pub fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr) {
        Ok(listener) => {
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    "!!! the demo page is served on {addr}, which other machines can reach: it \
                     is plain HTTP, and it shows what the API saw of its requests. Keep it on \
                     127.0.0.1 (--demo-page-bind 127.0.0.1:PORT) unless that is what you want. !!!"
                );
            }
            Some(listener)
        }
        Err(e) => {
            tracing::warn!(
                "the demo page is off: cannot listen on {addr} ({e}); is an Angular dev server \
                 running there? Pass --demo-page-bind to use another address, or --no-demo-page"
            );
            None
        }
    }
}

/// The origin the page is served as, and so the one its calls carry: `http://localhost:PORT` on a
/// loopback or wildcard address (what the start-up log tells you to open; the page calls the API
/// as `https://localhost:…`, the name in its certificate), else the address itself. Opened as
/// `http://127.0.0.1:PORT`, the page is another origin, and is not allowed unless listed.
pub fn origin(addr: SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Every origin the page can be opened as on this machine: the one it is announced as, then, on a
/// loopback or wildcard address, the loopback IPs (a browser opened on `http://127.0.0.1:PORT` is
/// still this page, under a name the API may not allow). The exchange record notes these only.
pub fn origins(addr: SocketAddr) -> Vec<String> {
    let mut origins = vec![origin(addr)];
    let ip = addr.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        let port = addr.port();
        origins.push(format!("http://127.0.0.1:{port}"));
        origins.push(format!("http://[::1]:{port}"));
    }
    origins
}

/// What the page is served with.
pub struct Page {
    /// The API's URL, e.g. `https://localhost:8443`, written into the page.
    pub api_base: String,
    /// The origins the API's CORS policy allows (`*` for any), written into the page so that it
    /// can say, before any click, whether the origin it was opened as will pass the preflight.
    /// The very list the policy is built from, so the two cannot disagree.
    pub allowed_origins: Vec<String>,
    /// What the server saw of the page's requests (`GET /exchanges`).
    pub exchanges: Arc<Exchanges>,
}

/// Serves the page and, same-origin for it, the record of what the API saw of its requests.
pub fn serve(listener: TcpListener, page: Page) -> std::io::Result<Server> {
    let html = PAGE
        .replace("__API_BASE__", &page.api_base)
        .replace("__ALLOWED_ORIGINS__", &page.allowed_origins.join(" "));
    let served_page = web::Data::new(Index {
        csp: csp_for(&html, &page.api_base),
        html,
    });
    let exchanges = web::Data::from(page.exchanges);
    let explorer = web::Data::new(explorer::Explorer::new(&page.api_base));
    let hosts = web::Data::new(KnownHosts::of(listener.local_addr()?));
    Ok(HttpServer::new(move || {
        App::new()
            // Every answer of this origin: no MIME sniffing.
            .wrap(DefaultHeaders::new().add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")))
            // Outermost: a DNS-rebinding page (a Host that is neither localhost nor an IP) gets 421.
            .wrap(from_fn(only_known_hosts))
            .app_data(hosts.clone())
            .app_data(served_page.clone())
            .app_data(exchanges.clone())
            .app_data(explorer.clone())
            .configure(explorer::configure)
            // HEAD answers like GET, without the body (RFC 9110 §9.3.2); actix drops the body.
            .service(web::resource(["/", "/index.html"]).get(index).head(index))
            .service(web::resource("/exchanges").get(recorded))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .listen(listener)?
    // Stopped with the API, by the same signal handling (`net::signals`).
    .disable_signals()
    .run())
}

/// The page as served, and its Content-Security-Policy.
struct Index {
    html: String,
    csp: String,
}

/// Only the page's own inline script and style run (by hash: the page has one of each), it may
/// call only itself and the API, and no other page may frame it (clickjacking).
fn csp_for(html: &str, api_base: &str) -> String {
    let hash = |open: &str, close: &str| {
        let inline = html
            .split_once(open)
            .and_then(|(_, rest)| rest.split_once(close))
            .map_or("", |(inline, _)| inline);
        let digest = ring::digest::digest(&ring::digest::SHA256, inline.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        )
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'self' data:; \
         connect-src 'self' {api_base}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        hash("<script>", "</script>"),
        hash("<style>", "</style>"),
    )
}

async fn index(page: web::Data<Index>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, page.csp.clone()))
        .body(page.html.clone())
}

#[derive(Deserialize)]
struct After {
    #[serde(default)]
    after: u64,
    /// The credentials mode the page's call used: `include` (withCredentials) or another.
    #[serde(default)]
    credentials: String,
}

/// `GET /exchanges?after=N&credentials=MODE`: the recorded exchanges after the N-th, each with
/// the browser's verdict on it by the Fetch rules for that credentials mode (`fetch`), and the
/// last one's number. No CORS headers: only the page itself (same-origin) may read it.
async fn recorded(exchanges: web::Data<Exchanges>, query: web::Query<After>) -> HttpResponse {
    let last = exchanges.last_seq();
    let with_credentials = query.credentials == "include";
    let judged: Vec<_> = exchanges
        .since(query.after)
        .into_iter()
        .map(|exchange| {
            // Its fields, and `fetch` beside them.
            let mut json = serde_json::to_value(&exchange).unwrap_or_default();
            json["fetch"] = browser_verdict(&exchange, with_credentials);
            json
        })
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "last": last, "exchanges": judged }))
}

/// What a browser concludes from one recorded response, by the same rules as the doctor
/// (`crate::fetch`): whether it lets the page through, and the first rule that fails.
fn browser_verdict(e: &Exchange, with_credentials: bool) -> serde_json::Value {
    let res = SeenResponse {
        status: e.status,
        headers: e.cors_headers.clone(),
    };
    let checks = match &e.requested_method {
        Some(method) if e.method == "OPTIONS" => {
            // Every name the browser listed was unsafe to it: a value no header may carry
            // safely keeps it so here.
            let headers = (e.requested_headers.as_deref().unwrap_or_default())
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(|name| (name.to_owned(), "\"".to_owned()))
                .collect();
            let req = CorsRequest {
                origin: e.origin.clone(),
                method: method.clone(),
                headers,
                with_credentials,
            };
            fetch::check_preflight(&req, &res)
        }
        _ => {
            let req = CorsRequest {
                origin: e.origin.clone(),
                method: e.method.clone(),
                headers: Vec::new(),
                with_credentials,
            };
            fetch::check_actual(&req, &res)
        }
    };
    let cause = checks
        .iter()
        .find(|c| c.outcome == fetch::Outcome::Fail)
        .map(|c| c.cause.clone().unwrap_or_else(|| c.rule.clone()));
    serde_json::json!({ "passes": fetch::passes(&checks), "cause": cause })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_origin_is_the_one_it_is_announced_as() {
        for (bind, expected) in [
            ("127.0.0.1:9711", "http://localhost:9711"),
            ("[::1]:4200", "http://localhost:4200"),
            ("0.0.0.0:4200", "http://localhost:4200"),
            ("192.168.1.5:4200", "http://192.168.1.5:4200"),
            ("[fe80::1]:4200", "http://[fe80::1]:4200"),
        ] {
            assert_eq!(origin(bind.parse().expect("addr")), expected, "{bind}");
        }
    }

    #[test]
    fn the_page_is_recorded_under_its_loopback_names_too() {
        assert_eq!(
            origins("127.0.0.1:9711".parse().expect("addr")),
            [
                "http://localhost:9711",
                "http://127.0.0.1:9711",
                "http://[::1]:9711"
            ]
        );
        assert_eq!(
            origins("192.168.1.5:4200".parse().expect("addr")),
            ["http://192.168.1.5:4200"]
        );
    }
}
