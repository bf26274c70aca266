//! The doctor's flags (`delivery-api preflight --help`): what the page would send, and how to
//! reach the server. Its own settings type, so the doctor needs nothing from `config`.

use std::path::PathBuf;

use clap::Args;

use crate::fetch;

/// The article's page origin (Angular's dev server), which delivery-api also allows by default.
pub(super) const ARTICLE_ORIGIN: &str = "http://localhost:4200";

pub const PREFLIGHT_EXIT_CODES: &str = "\
Exit status:
  0  a browser would let the page read the response
  1  a browser would block it (the report names the rule that fails)
  2  usage error: bad flags, a URL without http(s)://, an --origin that is not an origin,
     a --cacert without a PEM certificate, an invalid --method (nothing was sent)
  3  the preflight passes, but the actual request was not sent (an unsafe method without
     --send), so whether the page can read its response is unknown
With --har: 0 when every cross-origin request in the file was readable, 1 when one was
blocked, 2 when the file is not a HAR, is too big, or holds no cross-origin request.";

#[derive(Debug, Clone, Args)]
pub struct PreflightArgs {
    /// The URL the page calls, e.g. https://localhost:8443/delivery/all (not with --har)
    #[arg(value_parser = http_url, required_unless_present = "har", conflicts_with = "har")]
    pub url: Option<url::Url>,
    /// Judge what a browser recorded instead: a HAR file (DevTools → Network → Export HAR, in
    /// Chromium or Firefox; sanitised exports too). Every cross-origin request in it is judged
    /// with its preflight by the same rules; at most 64 MiB.
    #[arg(long, value_name = "FILE")]
    pub har: Option<PathBuf>,
    /// With --har: only the request at this position in the file (1 = the first entry).
    #[arg(long, requires = "har", value_name = "N")]
    pub entry: Option<usize>,
    /// With --har: only the requests whose URL contains this text.
    #[arg(long = "url", requires = "har", value_name = "SUBSTRING")]
    pub url_contains: Option<String>,
    /// With --har: also send each recorded preflight again now (and the actual request when it
    /// is GET or HEAD, or with --send), to see whether the server still answers the same way.
    #[arg(long, requires = "har")]
    pub replay: bool,
    /// The page's origin, exactly as a browser sends it: scheme://host[:port] (or `null`).
    #[arg(long, default_value = ARTICLE_ORIGIN, value_parser = page_origin)]
    pub origin: String,
    /// The request's method.
    #[arg(long, default_value = "GET", value_parser = fetch_method)]
    pub method: String,
    /// Also send the actual request when its method is not GET or HEAD (a POST, PUT or DELETE
    /// changes data on the server). Without it, only the preflight is checked.
    #[arg(long)]
    pub send: bool,
    /// A request header, as curl's -H: 'Name: value' replaces a default of that name, 'Name:' removes it.
    /// Defaults: the article's Accept, Authorization: Basic and Content-Type: application/json.
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// NAME:PASSWORD for the Authorization header (default: a placeholder).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Credentials mode "include", as Angular's `withCredentials: true`.
    #[arg(long)]
    pub with_credentials: bool,
    /// A request body for the actual request (e.g. for POST).
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// Trust this PEM CA (e.g. certs/dev-ca.crt) instead of the system's roots.
    #[arg(long, conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// Do not verify the server certificate (a browser would: expect status 0 there).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `preflight URL`: only http(s) URLs (`localhost:8443/x` would parse with scheme `localhost`).
fn http_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(url),
        _ => Err(format!(
            "{raw:?} is not an http(s) URL: write the scheme, e.g. https://localhost:8443/delivery/all"
        )),
    }
}

/// `--origin`: what a browser puts in `Origin`, byte for byte.
fn page_origin(raw: &str) -> Result<String, String> {
    if raw == "null" {
        return Ok(raw.to_owned()); // file:// pages and sandboxed iframes
    }
    match fetch::serialized_origin(raw) {
        Ok(serialized) if serialized == raw => Ok(serialized),
        Ok(serialized) => Err(format!(
            "{raw:?} is not a serialized origin: a browser sends it as {serialized}"
        )),
        Err(why) => Err(format!(
            "{raw:?} is not a serialized origin: {why} (expected scheme://host[:port], e.g. http://localhost:4200)"
        )),
    }
}

/// `--method`: an HTTP token that `fetch()` would send.
fn fetch_method(raw: &str) -> Result<String, String> {
    if reqwest::Method::from_bytes(raw.as_bytes()).is_err() || raw.is_empty() {
        return Err(format!("{raw:?} is not an HTTP method"));
    }
    if fetch::is_forbidden_method(raw) {
        return Err(format!("fetch() never sends {raw} (a forbidden method)"));
    }
    Ok(raw.to_owned())
}
