//! THE place where the middleware order is decided. Read this file first.
//!
//! A browser that wants to send `Authorization` and `Content-Type: application/json` to another
//! origin first sends a *preflight*: `OPTIONS` with `Origin` and `Access-Control-Request-*`
//! headers, and **never with credentials** (WHATWG Fetch, "CORS protocol"). If Basic auth sees that
//! preflight, it answers 401, the browser reports "Response to preflight request doesn't pass
//! access control check", and the page gets status 0. So:
//!
//! 1. CORS goes *outside* auth: it answers every preflight itself, before auth or the database.
//! 2. Auth rejects with a *response* (401 problem+json), so on its way out the CORS layer adds
//!    `Access-Control-Allow-Origin` to it and the page can read the 401.
//! 3. Auth guards a *scope*, not a list of path strings: whatever the router matches under
//!    `/delivery` (however the client spelled it: `/%64elivery/all` decodes to the same route) has
//!    passed auth, and so have its 404s and 405s.
//!
//! `--auth-before-cors` swaps the two on purpose, to reproduce the bug.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::middleware::{Condition, DefaultHeaders, from_fn};
use actix_web::{App, web};
use tracing_actix_web::TracingLogger;

use crate::access::{self, AccessLog};
use crate::auth::{self, Authenticator};
use crate::cors::CorsConfig;
use crate::exchanges::{Exchanges, Recorder};
use crate::metrics::{Measure, Metrics};
use crate::net::{self, AppFactory};
use crate::routes;
use crate::routes::delivery::cache::ReadCache;
use crate::store::Db;
use crate::store::deliveries::Creator;
use crate::store::revision::RevisionProbe;
use crate::test_support::{self, Faults, RequestLog};

/// The application, as `startup.rs` (and so every test) serves it.
pub fn app(state: AppState) -> App<impl AppFactory> {
    let correct = state.order == MiddlewareOrder::CorsBeforeAuth;
    let cors = state.cors.clone();
    let exchanges = state.exchanges.clone();
    let metrics = state.metrics.clone();
    let test_support = state.test_support.clone();

    App::new()
        .configure(|cfg| state.register(cfg))
        // ANCHOR: middleware (quoted in README.md and docs/how-it-works.md: tests/api/docs.rs keeps the quotes exact)
        // PROTECTED: every route under /delivery. actix runs middleware outside-in: the LAST
        // `.wrap()` is the OUTERMOST layer and sees the request FIRST.
        .service(
            web::scope("/delivery")
                .configure(routes::protected)
                .wrap(Faults) //                               <- innermost: `Prefer: code=503` (--test-support only), answered as a real 503 would be
                .wrap(Condition::new(correct, auth::basic())) // <- inner: auth, after CORS (correct)
                .wrap(cors.policy()) //                         <- answers preflights; adds CORS headers to every response, 401 included
                .wrap(Condition::new(!correct, auth::basic_before_cors())), // <- outer: auth before CORS (the bug, --auth-before-cors only)
        )
        // PUBLIC: /health, and the 404 for paths outside /delivery. CORS, no auth.
        .service(web::scope("").configure(routes::public).wrap(cors.policy()))
        // ANCHOR_END: middleware
        .wrap(from_fn(net::bound_request_body)) // <- 400 for an ambiguous length; a deadline on bodies (408)
        .wrap(Measure(metrics)) //                    <- counts each answer (route pattern, status, which layer answered); never rejects
        .wrap(Recorder(exchanges)) //                 <- notes what the demo page's origin sent and which layer answered; never rejects
        .wrap(security_headers()) //                  <- never rejects anything
        .wrap(from_fn(access::echo_id)) //            <- X-Request-Id on every response
        .wrap(test_support::Observe(test_support)) // <- --test-support: `Prefer: delay=…`, the request log; a pass-through when off
        .wrap(TracingLogger::<access::RootSpan>::new()) // <- outermost: a span (and request id) for every request, preflights too
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MiddlewareOrder {
    /// Correct: CORS answers preflights, then auth guards the actual request.
    CorsBeforeAuth,
    /// The classic bug, for teaching: auth rejects the credential-less preflight with 401.
    AuthBeforeCors,
}

/// Everything the app needs; cloned into each worker.
#[derive(Clone)]
pub struct AppState {
    /// The database (SQLite or PostgreSQL, `store::Db`).
    pub db: Db,
    pub authenticator: web::Data<Authenticator>,
    pub read_cache: web::Data<ReadCache>,
    /// Writes new deliveries in batches, one commit each (group commit).
    pub creator: web::Data<Creator>,
    pub cors: CorsConfig,
    pub order: MiddlewareOrder,
    pub body_timeout: net::BodyTimeout,
    /// What the demo page's origin sent and which layer answered (`None`: no demo page).
    pub exchanges: Option<Arc<Exchanges>>,
    /// Prometheus counters (`None`: no --metrics-bind).
    pub metrics: Option<Arc<Metrics>>,
    /// `GET /openapi.json`, built once (it names the API's origin).
    pub openapi: web::Data<routes::openapi::OpenApiJson>,
    /// One log line per request (`--access-log`).
    pub access_log: AccessLog,
    /// `--test-support`'s request log (`None`: off, and `Prefer` does nothing).
    pub test_support: Option<Arc<RequestLog>>,
}

impl AppState {
    /// Shared state and extractor settings, registered once per worker.
    fn register(self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(RevisionProbe::open(&self.db))) // one per worker thread (SQLite)
            .app_data(web::Data::new(self.db))
            .app_data(self.authenticator)
            .app_data(self.read_cache)
            .app_data(self.creator)
            .app_data(self.body_timeout)
            .app_data(self.openapi)
            .app_data(web::Data::new(self.access_log))
            .configure(routes::extractors)
            // Request targets no scope can match (`*`, an absolute URL over HTTP/2): problem+json.
            .default_service(web::to(routes::not_found));
    }
}

/// On every response, preflights included. HSTS without includeSubDomains: browsers ignore it
/// for IP literals, and Chromium (132+) and Firefox for `localhost` too (Safari does not yet: it
/// would upgrade http://localhost:4200 as well; see docs/security.md).
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Strict-Transport-Security", "max-age=31536000"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}
