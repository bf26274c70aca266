//! What the tests share, one job a file. `app.rs` starts the real app in this process
//! ([`TestApp`]); `binary.rs` runs the real binary ([`Served`], the CLI); `client.rs` speaks to
//! either the same way ([`Api`]: the article's requests, raw HTTP/1.1 and HTTP/2); `database.rs`
//! reads and writes the database behind them; `assertions.rs` judges answers by the browser's
//! rules; `openapi.rs` checks them against the served document; `browser.rs` drives a real browser; `pg.rs` runs PostgreSQL and
//! `engine.rs` says which engine the suite runs on. Test files `use crate::helpers::*`.
//! `static_files.rs` serves a built web app (examples/angular) from an origin of its own.

mod app;
mod assertions;
mod binary;
mod browser;
mod client;
mod database;
pub mod engine;
mod openapi;
pub mod pg;
mod static_files;

pub use app::*;
pub use assertions::*;
pub use binary::*;
pub use browser::*;
pub use client::*;
pub use database::*;
pub use engine::{on_postgres, sqlite_only};
pub use openapi::ApiDocument;
pub use static_files::StaticFiles;

/// The article's frontend origin (Angular's dev server), allowed by default.
pub const ORIGIN: &str = "http://localhost:4200";
/// The article's headers on the actual request.
pub const ACCEPT: &str = "application/json, text/plain, */*";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
pub const USER: &str = "demo";
pub const PASSWORD: &str = "demo-password";
/// Deliveries seeded by the migrations.
pub const SEEDED: usize = 12;

/// `req` with its `Content-Type` set to `content_type` (replacing the one the article's request
/// carries: reqwest's `header()` would add a second).
pub fn with_content_type(
    req: reqwest::RequestBuilder,
    content_type: &str,
) -> reqwest::RequestBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_str(content_type).expect("a content type"),
    );
    req.headers(headers)
}

/// The media type of a PATCH body (RFC 7396).
pub const MERGE_PATCH: &str = "application/merge-patch+json";
