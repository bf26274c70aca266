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
//!
//! `--auth-before-cors` swaps the two on purpose, to reproduce the bug.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, DefaultHeaders};
use actix_web::{App, web};
use sqlx::SqlitePool;
use tracing_actix_web::TracingLogger;

use crate::auth::{self, Authenticator};
use crate::cors::CorsConfig;
use crate::db::DbFile;
use crate::list_cache::ListCache;
use crate::revision::RevisionProbe;
use crate::routes;

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
    pub pool: SqlitePool,
    pub authenticator: web::Data<Authenticator>,
    pub list_cache: web::Data<ListCache>,
    pub cors: CorsConfig,
    pub order: MiddlewareOrder,
    /// The SQLite file: each worker's in-thread revision probe (`revision.rs`) reads it, and every
    /// request checks it is still the file that was opened (`db::DbFile`).
    pub db_file: DbFile,
}

/// On every response, preflights included. HSTS without includeSubDomains: browsers ignore it
/// for IP literals, and Chromium (132+) and Firefox for `localhost` too (Safari does not yet: it
/// would upgrade http://localhost:4200 as well; see README).
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Strict-Transport-Security", "max-age=31536000"))
        .add(("X-Content-Type-Options", "nosniff"))
}

/// Builds the application. `startup.rs` (and so every test) serves exactly this.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let correct = state.order == MiddlewareOrder::CorsBeforeAuth;

    App::new()
        .app_data(web::Data::new(RevisionProbe::open(state.db_file.path()))) // one per worker thread
        .app_data(web::Data::new(state.db_file))
        .app_data(web::Data::new(state.pool))
        .app_data(state.authenticator)
        .app_data(state.list_cache)
        .configure(routes::configure)
        // actix-web runs middleware in the OPPOSITE order of registration:
        // the LAST `.wrap()` is the OUTERMOST layer and sees the request FIRST.
        .wrap(Condition::new(correct, auth::basic())) // <- inner: auth, after CORS (correct)
        .wrap(state.cors.policy()) //                    <- answers preflights; adds CORS headers to every response, 401 included
        .wrap(Condition::new(!correct, auth::basic())) // <- outer: auth before CORS (the bug, --auth-before-cors only)
        .wrap(security_headers()) //                      <- never rejects anything
        .wrap(TracingLogger::default()) //                <- outermost: logs every request, preflights too
}
