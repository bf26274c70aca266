//! `delivery-api preflight`: replays a browser's CORS exchange against any URL and names the rule
//! that fails. Independent of the server: it is a client, and the rules are pure functions.
//!
//! - `rules.rs`: the WHATWG Fetch standard's CORS checks, as pure functions over a request and a
//!   response (also what this project's tests judge the server with).
//! - `run.rs`: sends the preflight and the actual request, as a browser would.
//! - `render.rs`: the report, as text (or JSON, through serde).

pub mod render;
pub mod rules;
pub mod run;

pub use render::render;
pub use run::{Exchange, Report, cors_request, run, seen};
