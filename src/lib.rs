//! delivery-api: a reference backend that answers CORS preflights before HTTP Basic auth.
//!
//! The modules, in the order a request meets them:

/// THE middleware order (CORS outside auth) and why. Start reading here.
pub mod app;
/// HTTP Basic auth (actix-web-httpauth), argon2 off the async workers.
pub mod auth;
/// The `user add|list|remove` subcommand.
pub mod cli;
/// Flags and environment variables (clap): the whole configuration.
pub mod config;
/// The CORS policy (actix-cors) and allowed-origin parsing.
pub mod cors;
/// The browser's CORS rules (WHATWG Fetch), as pure functions.
pub mod cors_check;
/// Successful logins remembered (HMAC-keyed, bounded, TTL, dropped on any user change).
pub mod credential_cache;
/// SQLite pool and embedded migrations.
pub mod db;
/// Deliveries: types and queries.
pub mod deliveries;
/// The demo page, served on a second origin.
pub mod demo_page;
/// `delivery-api preflight`: replay a browser's CORS exchange against any URL.
pub mod doctor;
/// One error type, rendered as RFC 9457 problem+json.
pub mod error;
/// The serialized list, reused while the database's deliveries revision is unchanged.
pub mod list_cache;
/// Password-guessing limits per client IP and per user name (governor).
pub mod login_limit;
/// The database's change counters, read in-thread on every authenticated request.
pub mod revision;
/// The route tree and its handlers.
pub mod routes;
/// From TCP accept to the app: per-client connection caps, TLS, HTTP/1.1 and HTTP/2 limits.
pub mod server;
/// Builds the server: checks, TLS, database, listener.
pub mod startup;
/// tracing setup.
pub mod telemetry;
/// rustls configuration and the generated dev CA.
pub mod tls;
/// Users and password hashes, shared with the `user` subcommand.
pub mod users;
