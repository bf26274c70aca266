//! delivery-api: a reference backend that answers CORS preflights before HTTP Basic auth.
//!
//! The modules, top to bottom in the order a request meets them: a module imports only modules
//! below it (`tests/api/layout.rs` enforces it; docs/layout.md shows the table). Start reading at
//! `app`. (Each row is its own block, so that rustfmt keeps the order.)

// The subcommands beside the server.
/// The `user`, `preflight` and `copy-data` subcommands.
pub mod cli;

// Start-up: flags -> a running server.
/// Builds the server from its flags, in named steps; the ready line, `--ephemeral`, `--seed`.
pub mod startup;

// The flags, one group per layer.
/// Flags and environment variables (clap), grouped by the layer each configures.
pub mod config;

// Beside the API: the second origin, the doctor.
/// The demo page, served on a second origin.
pub mod demo_page;
/// `delivery-api preflight`: a client that replays a browser's CORS check against any URL.
pub mod preflight;

// A request arrives: THE middleware order (CORS outside auth), and why. Start reading here.
pub mod app;

// A test suite's tools, off unless --test-support.
/// `--test-support`: faults and delays asked for with `Prefer`, the request log, reset to the seed.
pub mod test_support;

// Observers, outermost: they never reject.
/// Each request's id (`X-Request-Id`) and its access-log line.
pub mod access;
/// The demo page's bounded record of what the server saw, and which layer answered.
pub mod exchanges;
/// Prometheus metrics: counted once per answer, with bounded labels, served on --metrics-bind.
pub mod metrics;

// The policy layers, and what they guard.
/// HTTP Basic auth: the middleware, credentials, the authenticator, remembered logins, limits.
pub mod auth;
/// The CORS policy (actix-cors), allowed-origin parsing, refusals as problem+json and as one
/// throttled log line naming the fix.
pub mod cors;
/// The route tree: public routes, the protected `/delivery` scope, input rules.
pub mod routes;

// The connection under every request.
/// From TCP accept to the app: per-client connection caps, TLS, HTTP/1.1 and HTTP/2 limits,
/// the request-body deadline.
pub mod net;

// One error type for every layer above.
/// One error type, rendered as RFC 9457 problem+json; store errors mapped to statuses.
pub mod error;

// The leaves: nothing else from this crate.
/// Which layer answered a request (written by CORS and auth, read by metrics and the demo page).
pub mod answered_by;
/// The Fetch standard's CORS rules, shared by the server, the flags, the doctor and the tests.
pub mod fetch;
/// SQLite or PostgreSQL (one `Db`, chosen by the URL): migrations, deliveries, users, the
/// revisions that keep caches exact across instances, cached reads, `copy-data`. No HTTP.
pub mod store;
/// tracing setup, and log lines a client cannot flood.
pub mod telemetry;
/// rustls configuration and the generated dev CA.
pub mod tls;
