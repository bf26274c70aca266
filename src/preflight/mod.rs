//! `delivery-api preflight`: replays a browser's CORS exchange against any URL and names the rule
//! that fails. Independent of the server: it is a client, and the rules are pure functions (only
//! `--har`, short of a refusal's body, compares it with this server's lists, `cors::always_allowed`).
//!
//! - the rules themselves are `crate::fetch`: the WHATWG Fetch standard's CORS checks, as pure
//!   functions over a request and a response, shared with the server and the tests.
//! - `args.rs`: its flags.
//! - `run.rs`: sends the preflight and the actual request, as a browser would.
//! - `render.rs`: the report, as text (or JSON, through serde).
//! - `har/`: `--har FILE`, the same judgement over what a browser recorded: `mod.rs` reads the
//!   file and pairs each request with its preflight, `exchange.rs` judges a pair,
//!   `unrecorded.rs` says what the file cannot tell.

mod args;
pub mod har;
pub mod render;
pub mod run;

pub use args::{PREFLIGHT_EXIT_CODES, PreflightArgs};
pub use render::render;
pub use run::{Exchange, Report, cors_request, run, seen};
