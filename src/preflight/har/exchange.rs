//! One exchange from the file, judged: what the page asked for, the preflight and the request as
//! the browser recorded them, the verdict, and notes on what the file cannot tell.

use super::super::PreflightArgs;
use super::super::run::{Exchange, Report, finish, normalize_method, verdict, with_detail};
use super::{Entry, set_by_browser, unrecorded};
use crate::fetch::{self as rules, CorsRequest};

/// An entry of the file and its position in it.
type At<'a> = Option<(usize, &'a Entry)>;

pub(super) fn report(args: &PreflightArgs, origin: &str, preflight: At, actual: At) -> Report {
    let (url, method) = match (actual, preflight) {
        (Some((_, a)), _) => (a.request.url.clone(), a.request.method.clone()),
        (None, Some((_, p))) => (
            p.request.url.clone(),
            p.request
                .header("access-control-request-method")
                .unwrap_or_default()
                .to_owned(),
        ),
        (None, None) => (String::new(), String::new()),
    };
    let mut request = page_request(args, origin, &method, preflight, actual);
    let mut judged = Judged::new(&request, preflight, actual);
    let mut notes = Vec::new();
    // A HAR does not record the credentials mode. When the browser refused what passes every
    // rule without credentials, and the same answer fails with them, that is what happened.
    if !request.with_credentials && judged.refused_by_the_browser_only(actual) {
        let credentialed = CorsRequest {
            with_credentials: true,
            ..request.clone()
        };
        let again = Judged::new(&credentialed, preflight, actual);
        if again.fails_a_rule() {
            (request, judged) = (credentialed, again);
            notes.push(unrecorded::CREDENTIALS_INFERRED.to_owned());
        }
    }
    let verdict = judged.verdict(&request);
    let preflight_reasons = rules::preflight_reasons(&request);
    // Mixed content is blocked before the preflight: none was due in the file.
    let mixed = actual.is_some_and(|(_, a)| {
        a.response.status <= 0 && unrecorded::mixed_content(origin, &a.request.url).is_some()
    });
    if preflight.is_none() && actual.is_some() && !mixed && !preflight_reasons.is_empty() {
        notes.push(unrecorded::NO_PREFLIGHT.to_owned());
    }
    if let Some((_, p)) = preflight.filter(|_| judged.blocked) {
        notes.extend(unrecorded::which_refusal(&p.request, &p.response, origin));
    }
    let mut report = Report {
        recorded: Some(recorded(preflight, actual)),
        url,
        preflight_reasons,
        preflight: judged.preflight,
        actual: judged.actual,
        not_sent: judged.not_sent,
        readable: judged.readable,
        verdict,
        notes,
        replayed: None,
        request,
    };
    report.redact();
    report
}

/// The preflight and the request as recorded, checked against what the page asked for.
struct Judged {
    preflight: Option<Exchange>,
    actual: Option<Exchange>,
    /// The preflight failed: the browser never sent the request.
    blocked: bool,
    readable: bool,
    not_sent: Option<String>,
}

impl Judged {
    fn new(request: &CorsRequest, preflight: At, actual: At) -> Self {
        let preflight = preflight.map(|(_, p)| {
            let seen = p.response.seen(&p.request.url, &request.origin, false);
            let mut x = finish("OPTIONS", p.request.plain_headers(), seen, |res| {
                rules::check_preflight(request, res)
            });
            x.detail = p.response.problem_detail();
            x
        });
        let blocked = preflight.as_ref().is_some_and(|p| !p.passed());
        // After a failed preflight the browser never sends the request: an entry for it (both
        // browsers list one, status 0) is the browser's own refusal, not a response.
        let actual_exchange = actual.filter(|_| !blocked).map(|(_, a)| {
            let seen = a
                .response
                .seen(&a.request.url, &request.origin, preflight.is_some());
            finish(&request.method, a.request.plain_headers(), seen, |res| {
                rules::check_actual(request, res)
            })
        });
        let not_sent = (actual.is_none() && !blocked).then(|| {
            "the file holds no request after this preflight: the page did not send it, or the \
             export left it out"
                .to_owned()
        });
        Self {
            readable: actual_exchange.as_ref().is_some_and(Exchange::passed),
            preflight,
            actual: actual_exchange,
            blocked,
            not_sent,
        }
    }

    /// The rules let it through, yet the browser recorded a failure: status 0 for the request
    /// after a preflight that passes, or (Chromium) an error on a response the rules find
    /// readable.
    fn refused_by_the_browser_only(&self, actual: At) -> bool {
        let Some((_, a)) = actual else {
            return false;
        };
        let no_answer = a.response.status <= 0;
        let error = a.response.error.as_deref().is_some_and(|e| !e.is_empty());
        !self.blocked && (no_answer || (error && self.readable))
    }

    /// A rule fails on an answer the browser received (not a missing answer).
    fn fails_a_rule(&self) -> bool {
        let fails = |x: &Exchange| x.response.is_some() && !x.passed();
        self.preflight.as_ref().is_some_and(fails) || self.actual.as_ref().is_some_and(fails)
    }

    fn verdict(&self, request: &CorsRequest) -> String {
        let no_answer = |x: &Exchange, what: &str| {
            x.error.as_ref().map(|error| {
                format!(
                    "FAIL: the {what} got no HTTP answer, so no CORS rule was checked; the page \
                     sees status 0. {error}"
                )
            })
        };
        if let Some(failed) = self
            .preflight
            .as_ref()
            .and_then(|p| no_answer(p, "preflight"))
        {
            return failed;
        }
        if self.preflight.is_none()
            && let Some(failed) = self.actual.as_ref().and_then(|a| no_answer(a, "request"))
        {
            return failed;
        }
        match &self.not_sent {
            Some(why) => format!("PREFLIGHT ONLY: the preflight passes; {why}."),
            None => with_detail(
                verdict(
                    request,
                    self.preflight.as_ref(),
                    self.actual.as_ref(),
                    self.readable,
                ),
                self.preflight.as_ref(),
            ),
        }
    }
}

/// Where in the file the exchange was recorded.
fn recorded(preflight: At, actual: At) -> String {
    let position = |x: At| x.map(|(i, _)| format!("entry {}", i + 1));
    match (position(actual), position(preflight)) {
        (Some(a), Some(p)) => format!("{a} (its preflight: {p})"),
        (Some(a), None) => format!("{a} (no preflight recorded)"),
        (None, Some(p)) => format!("{p} (a preflight, with no request after it)"),
        (None, None) => String::new(),
    }
}

/// What the page asked for, as far as the file tells.
fn page_request(
    args: &PreflightArgs,
    origin: &str,
    method: &str,
    preflight: At,
    actual: At,
) -> CorsRequest {
    // A sanitised export drops Authorization and Cookie: the preflight still names them.
    let announced: Vec<&str> = preflight
        .and_then(|(_, p)| p.request.header("access-control-request-headers"))
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    // The browser's HTTP cache adds If-None-Match / If-Modified-Since itself when it revalidates
    // a stored response, after the CORS check: the page's own only if its preflight named them.
    let conditional = |name: &str| {
        ["if-none-match", "if-modified-since"].contains(&name.to_ascii_lowercase().as_str())
            && !announced.iter().any(|a| a.eq_ignore_ascii_case(name))
    };
    let mut headers: Vec<(String, String)> = actual
        .map(|(_, a)| a.request.plain_headers())
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| !set_by_browser(name) && !conditional(name))
        .collect();
    for &name in &announced {
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            headers.push((name.to_owned(), "<not in the file>".to_owned()));
        }
    }
    let cookie = actual.is_some_and(|(_, a)| a.request.header("cookie").is_some());
    CorsRequest {
        origin: origin.to_owned(),
        method: normalize_method(method),
        headers,
        with_credentials: args.with_credentials || cookie,
    }
}
