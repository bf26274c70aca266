//! `preflight --har FILE`: judges what the learner's own browser recorded. DevTools → Network →
//! "Export HAR" (Chromium and Firefox; HAR 1.2) holds each request the page made, the preflights
//! among them, with the headers both ways. Each cross-origin request is paired with its preflight
//! (here) and judged by the same Fetch rules as a replay (`crate::fetch`), into the same
//! [`Report`] (`exchange.rs`).
//!
//! What a HAR does not hold is guessed as little as possible, and said (`unrecorded.rs`):
//! - the page's origin: the request's `Origin`, else its `Referer`'s origin, else the URL the
//!   file gives its page (a request blocked as mixed content has neither header);
//! - the credentials mode: "include" when the request carried a `Cookie` (or `--with-credentials`),
//!   or when the browser refused a request that passes every rule without credentials;
//! - headers a sanitised export removed (Authorization, Cookie): the preflight's
//!   `Access-Control-Request-Headers` still names them;
//! - why nothing was answered (status 0): Chromium writes its network error (`_error`), Firefox
//!   nothing; an http:// URL from an https page is mixed content, whatever either writes;
//! - which rule a 400 preflight broke: neither browser keeps a preflight's body.

mod exchange;
mod unrecorded;

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::PreflightArgs;
use super::run::Report;
use crate::fetch::SeenResponse;

/// Largest HAR read. Exports with response bodies grow fast; the headers are what matters, and a
/// bigger file can be re-exported without content ("Export HAR (sanitized)" or a filtered view).
pub const MAX_HAR_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    entries: Vec<Entry>,
    /// The pages the requests were made from: both browsers' exports write each page's URL as
    /// its `title`.
    #[serde(default)]
    pages: Vec<Page>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct Entry {
    request: Message,
    response: Message,
    #[serde(default)]
    pageref: Option<String>,
}

/// A request or a response: what the rules need of either (bodies are skipped unread).
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    method: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    status: i64,
    /// `HTTP/2`, `HTTP/1.1`; Firefox writes `HTTP/0.9` for bytes that are no HTTP response.
    #[serde(rename = "httpVersion", default)]
    http_version: String,
    #[serde(default)]
    headers: Vec<Header>,
    /// Why a request failed, in the browser's words: Chromium's `_error` (its
    /// `Network.loadingFailed` errorText, e.g. `net::ERR_CERT_AUTHORITY_INVALID`), Playwright's
    /// `_failureText`. Firefox's own export writes none.
    #[serde(rename = "_error", alias = "_failureText", default)]
    error: Option<String>,
    /// A response's body, when the export kept it.
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    name: String,
    value: String,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The headers as sent, without HTTP/2 pseudo-headers (`:authority`…).
    fn plain_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|h| !h.name.starts_with(':'))
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect()
    }

    /// The `detail` of a problem+json body, when the export kept the body: a refusal's reason in
    /// the server's own words (this server names the origin, method or header it refused).
    fn problem_detail(&self) -> Option<String> {
        let text = self.content.as_ref()?.text.as_deref()?;
        let body: serde_json::Value = serde_json::from_str(text).ok()?;
        body["detail"].as_str().map(String::from)
    }

    fn is_preflight(&self) -> bool {
        self.method.eq_ignore_ascii_case("OPTIONS")
            && self.header("access-control-request-method").is_some()
    }

    /// What the browser received, or why nothing: status 0 (blocked, failed or never
    /// answered), or bytes that were no HTTP response. `url` is the request's, `origin` the
    /// page's.
    fn seen(
        &self,
        url: &str,
        origin: &str,
        after_passed_preflight: bool,
    ) -> Result<SeenResponse, String> {
        if self.status <= 0 {
            if let Some(why) = unrecorded::mixed_content(origin, url) {
                return Err(why);
            }
            let error = self.error.as_deref().filter(|e| !e.is_empty());
            return Err(unrecorded::no_answer(error, url, after_passed_preflight));
        }
        if let Some(why) = unrecorded::not_http(
            self.status,
            &self.http_version,
            self.headers.is_empty(),
            url,
        ) {
            return Err(why);
        }
        Ok(SeenResponse {
            status: u16::try_from(self.status).unwrap_or(0),
            headers: self.plain_headers(),
        })
    }
}

/// Every cross-origin exchange in the file (or the ones `--entry` / `--url` pick), judged.
pub fn judge(args: &PreflightArgs, file: &Path) -> anyhow::Result<Vec<Report>> {
    let har = read(file)?;
    let entries = &har.log.entries;
    let mixed = if har
        .log
        .pages
        .iter()
        .any(|p| p.title.starts_with("https://"))
    {
        unrecorded::MIXED_CONTENT_UNRECORDED
    } else {
        ""
    };
    if entries.is_empty() {
        bail!(
            "{} holds no requests at all: either the export was made before the page made its \
             request (keep DevTools open on the Network tab while you reproduce the failure, then \
             export), or the browser blocked the request before sending it{mixed}",
            file.display()
        );
    }
    let picked = |i: Option<usize>| {
        i.is_some_and(|i| {
            args.entry.is_none_or(|n| n == i + 1)
                && args
                    .url_contains
                    .as_deref()
                    .is_none_or(|s| entries[i].request.url.contains(s))
        })
    };
    let mut reports: Vec<(usize, Report)> = pairs(entries, &har.log.pages)
        .into_iter()
        .filter(|pair| picked(pair.actual) || picked(pair.preflight))
        .map(|pair| {
            let at = pair.actual.or(pair.preflight).unwrap_or_default();
            let with = |i: Option<usize>| i.map(|i| (i, &entries[i]));
            let report =
                exchange::report(args, &pair.origin, with(pair.preflight), with(pair.actual));
            (at, report)
        })
        .collect();
    reports.sort_by_key(|(at, _)| *at);
    if reports.is_empty() {
        bail!(
            "{} holds {} requests and none of them is a cross-origin request{}: there is nothing \
             for CORS to block. Export the HAR from the page that fails (DevTools → Network, with \
             the failing request in the list), or check --entry / --url{mixed}",
            file.display(),
            entries.len(),
            if args.entry.is_some() || args.url_contains.is_some() {
                " that --entry / --url picks"
            } else {
                ""
            }
        );
    }
    Ok(reports.into_iter().map(|(_, report)| report).collect())
}

/// One cross-origin exchange: positions in the file of the request and of its preflight.
struct Pair {
    origin: String,
    preflight: Option<usize>,
    actual: Option<usize>,
}

/// Each cross-origin request with the nearest unpaired preflight for it (same URL, origin and
/// method), before or after it: Chromium lists the request when the page makes it, then the
/// preflight it triggers, and so does Firefox. Then the preflights left over: the browser
/// stopped there (or the export did).
fn pairs(entries: &[Entry], pages: &[Page]) -> Vec<Pair> {
    let mut paired = vec![false; entries.len()];
    let mut pairs = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.request.is_preflight() {
            continue;
        }
        let Some(origin) = page_origin(entry, pages) else {
            continue;
        };
        if !cross_origin(&origin, &entry.request.url) {
            continue;
        }
        let fits =
            |j: &usize| !paired[*j] && preflight_for(&entries[*j].request, &entry.request, &origin);
        let before = (0..i).rev().find(fits);
        let after = (i + 1..entries.len()).find(fits);
        let preflight = match (before, after) {
            (Some(b), Some(a)) => Some(if i - b <= a - i { b } else { a }),
            (b, a) => b.or(a),
        };
        if let Some(j) = preflight {
            paired[j] = true;
        }
        pairs.push(Pair {
            origin,
            preflight,
            actual: Some(i),
        });
    }
    for (j, entry) in entries.iter().enumerate() {
        if paired[j] || !entry.request.is_preflight() {
            continue;
        }
        if let Some(origin) = entry.request.header("origin") {
            pairs.push(Pair {
                origin: origin.to_owned(),
                preflight: Some(j),
                actual: None,
            });
        }
    }
    pairs
}

fn read(file: &Path) -> anyhow::Result<Har> {
    let at = file.display();
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {at}"))?
        .len();
    if size > MAX_HAR_BYTES {
        bail!(
            "{at} is {} MiB, over the {} MiB this reads: export it again without response \
             bodies (Chromium: \"Export HAR (sanitized)\"), or with only the failing requests \
             in view",
            size / (1024 * 1024),
            MAX_HAR_BYTES / (1024 * 1024)
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {at}"))?;
    serde_json::from_slice::<Har>(&bytes).map_err(|e| {
        let what = if e.is_eof() {
            "is cut short (the export did not finish?)"
        } else if e.is_syntax() {
            "is not JSON"
        } else {
            "is JSON but not a HAR (expected {\"log\": {\"entries\": [...]}})"
        };
        anyhow::anyhow!("{at} {what}: {e}")
    })
}

/// The origin of the page that made the request: `Origin`, else the `Referer`'s origin, else
/// its page's (the URL both browsers write as the page's `title`). A request the browser blocked
/// before sending it (mixed content) has neither header, and an https page sends no `Referer` to
/// an http:// URL.
fn page_origin(entry: &Entry, pages: &[Page]) -> Option<String> {
    let req = &entry.request;
    if let Some(origin) = req.header("origin") {
        return Some(origin.to_owned());
    }
    let origin_of = |url: &str| {
        let url = url::Url::parse(url).ok()?;
        matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
    };
    if let Some(origin) = req.header("referer").and_then(origin_of) {
        return Some(origin);
    }
    let page = entry.pageref.as_deref()?;
    origin_of(&pages.iter().find(|p| p.id == page)?.title)
}

fn cross_origin(origin: &str, url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.origin().ascii_serialization() != origin)
}

fn preflight_for(candidate: &Message, req: &Message, origin: &str) -> bool {
    candidate.is_preflight()
        && candidate.url == req.url
        && candidate.header("origin") == Some(origin)
        && candidate.header("access-control-request-method") == Some(req.method.as_str())
}

/// Headers the browser adds itself (forbidden to a page, or set by the browser): not part of
/// what the page asked for, so never a reason to preflight.
fn set_by_browser(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("sec-")
        || n.starts_with("proxy-")
        || n.starts_with("access-control-request-")
        || matches!(
            n.as_str(),
            "accept-charset"
                | "accept-encoding"
                | "accept-language"
                | "connection"
                | "content-length"
                | "cookie"
                | "date"
                | "dnt"
                | "expect"
                | "host"
                | "keep-alive"
                | "origin"
                | "referer"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
                | "user-agent"
                | "via"
                | "priority"
                | "pragma"
                | "cache-control"
        )
}

/// The flags that replay `report` against the server as it is now.
pub fn replay_args(args: &PreflightArgs, report: &Report) -> anyhow::Result<PreflightArgs> {
    let url = url::Url::parse(&report.url).with_context(|| format!("{:?}", report.url))?;
    let mut replay = args.clone();
    replay.har = None;
    replay.entry = None;
    replay.url_contains = None;
    replay.replay = false;
    replay.url = Some(url);
    replay.origin = report.request.origin.clone();
    replay.method = report.request.method.clone();
    replay.with_credentials = report.request.with_credentials;
    // Every header the page sent, replacing the doctor's defaults ('Name:' removes one). The
    // recorded Authorization is never in the report: `-u NAME:PASSWORD` sends a real one.
    let own_credentials = args.user.is_some();
    replay.headers = ["Accept:", "Content-Type:"]
        .into_iter()
        .chain((!own_credentials).then_some("Authorization:"))
        .map(String::from)
        .chain(
            report
                .request
                .headers
                .iter()
                .filter(|(name, _)| {
                    !(own_credentials && name.eq_ignore_ascii_case("authorization"))
                })
                .map(|(name, value)| format!("{name}: {value}")),
        )
        .collect();
    Ok(replay)
}
