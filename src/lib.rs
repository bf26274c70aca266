//! delivery-api: a reference backend that answers CORS preflights before HTTP Basic auth.
//!
//! The modules, grouped in the order a request meets them. (rustfmt would sort one flat list
//! alphabetically; the groups keep the order.)

// Start-up: flags → the server.
/// Flags and environment variables (clap): the whole configuration.
pub mod config;
/// Under a test harness: the ready line, `--ephemeral`, `--seed`.
pub mod harness;
/// Builds the server: checks, TLS, database, listener.
pub mod startup;
/// tracing setup, and log lines a client cannot flood.
pub mod telemetry;

// A connection arrives.
/// Which layer answered a request (written by CORS and auth, read by metrics and the demo page).
pub mod answered_by;
/// The Fetch standard's CORS rules, shared by the server, the flags, the doctor and the tests.
pub mod fetch;
/// From TCP accept to the app: per-client connection caps, TLS, HTTP/1.1 and HTTP/2 limits.
pub mod net;
/// rustls configuration and the generated dev CA.
pub mod tls;

// A request arrives: THE middleware order (CORS outside auth), and why. Start reading here.
pub mod app;
/// HTTP Basic auth: the middleware, credentials, the authenticator, remembered logins, limits.
pub mod auth;
/// The CORS policy (actix-cors), allowed-origin parsing, refusals as problem+json and as one
/// throttled log line naming the fix.
pub mod cors;
/// One error type, rendered as RFC 9457 problem+json; store errors mapped to statuses.
pub mod error;
/// Which layer answered a request, and the demo page's bounded record of what the server saw.
pub mod exchanges;
/// Prometheus metrics: counted once per answer, with bounded labels, served on --metrics-bind.
pub mod metrics;
/// The route tree: public routes, the protected `/delivery` scope, input rules.
pub mod routes;

// The data.
/// SQLite or PostgreSQL (one `Db`, chosen by the URL): migrations, deliveries, users, the
/// revisions that keep caches exact across instances, cached reads, `copy-data`. No HTTP.
pub mod store;

// Beside the API.
/// The `user`, `preflight` and `copy-data` subcommands.
pub mod cli;
/// The demo page, served on a second origin.
pub mod demo_page;
/// `delivery-api preflight`: the Fetch standard's CORS rules, and a client that replays a browser.
pub mod preflight;
