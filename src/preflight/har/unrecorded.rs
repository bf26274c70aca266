//! What a browser's export does not say, said as precisely as the file allows: why nothing was
//! answered (Chromium writes its network error, Firefox nothing), bytes that were no HTTP,
//! a preflight the browser took from its cache, the credentials mode, and which rule a 400
//! preflight broke (neither browser keeps a preflight's body).

use super::super::args::ARTICLE_ORIGIN;
use super::Message;

/// What a browser's network error code means here: Chromium's (`ERR_…`, its `_error`) and
/// Firefox's (`NS_ERROR_…`, `SEC_ERROR_…`, as WebDriver BiDi and Playwright's `_failureText`
/// give them).
fn network_cause(code: &str, host: &str, origin: &str, https: bool) -> String {
    let is = |names: &[&str]| names.contains(&code);
    if code.starts_with("ERR_CERT_")
        || code.contains("SEC_ERROR_")
        || code.contains("MOZILLA_PKIX_ERROR_")
    {
        format!(
            "the browser does not trust the server's certificate: the TLS handshake failed and \
             nothing reached the server. Trust the CA that signed it (delivery-api: \
             certs/dev-ca.crt, see certs/README.md), or open {origin}/ in a tab once and accept"
        )
    } else if is(&["ERR_CONNECTION_REFUSED", "NS_ERROR_CONNECTION_REFUSED"]) {
        format!(
            "nothing listens at {host}: the server is not running, or the page calls the wrong \
             port (check the server's --bind against the page's API URL)"
        )
    } else if is(&["ERR_INVALID_HTTP_RESPONSE", "ERR_EMPTY_RESPONSE"]) && !https {
        format!(
            "what answered at {host} is not plain HTTP: the URL says http:// for a server that \
             speaks HTTPS; call https://{host}"
        )
    } else if is(&[
        "ERR_SSL_PROTOCOL_ERROR",
        "ERR_SSL_VERSION_OR_CIPHER_MISMATCH",
    ]) {
        format!(
            "the TLS handshake with {host} failed: the URL says https:// for a server that speaks \
             plain HTTP, or the server's TLS is broken"
        )
    } else if is(&["ERR_NAME_NOT_RESOLVED", "NS_ERROR_UNKNOWN_HOST"]) {
        format!("the host name in {origin} does not resolve")
    } else if is(&[
        "ERR_CONNECTION_RESET",
        "ERR_CONNECTION_CLOSED",
        "ERR_EMPTY_RESPONSE",
        "NS_ERROR_NET_RESET",
        "NS_ERROR_NET_INTERRUPT",
    ]) {
        format!("{host} closed the connection without an answer")
    } else if is(&[
        "ERR_TIMED_OUT",
        "ERR_CONNECTION_TIMED_OUT",
        "NS_ERROR_NET_TIMEOUT",
    ]) {
        format!("{host} did not answer in time")
    } else if is(&["ERR_BLOCKED_BY_CLIENT"]) {
        "an extension in the browser (an ad blocker?) blocked it".into()
    } else if is(&["ERR_ABORTED", "NS_BINDING_ABORTED"]) {
        "the page cancelled it (it navigated away, or aborted the call)".into()
    } else if is(&["ERR_FAILED", "NS_ERROR_DOM_BAD_URI"]) {
        "the browser refused it (its CORS check, or another block)".into()
    } else {
        "a network error".into()
    }
}

/// Status 0: the browser recorded no answer. `error` is Chromium's `_error` (its
/// `Network.loadingFailed` errorText, e.g. `net::ERR_CERT_AUTHORITY_INVALID`); Firefox's export
/// has none. `after_passed_preflight`: a preflight went through, so the connection worked.
pub(super) fn no_answer(error: Option<&str>, url: &str, after_passed_preflight: bool) -> String {
    let parsed = url::Url::parse(url).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_owned());
    let origin = parsed
        .as_ref()
        .map_or_else(|| url.to_owned(), |u| u.origin().ascii_serialization());
    let https = parsed.as_ref().is_some_and(|u| u.scheme() == "https");
    let Some(error) = error else {
        if after_passed_preflight {
            return "the browser recorded no response and no reason (status 0) after a preflight \
                    that passes: it refused the response, or the connection broke"
                .to_owned();
        }
        return format!(
            "the browser recorded no answer and no reason (status 0; Firefox's export writes \
             none). Before any CORS check, one of: the browser does not trust the certificate, \
             nothing listens at {host} (the server is down, or the port is wrong), or the \
             connection failed otherwise. Tell them apart: open {origin}/ in a tab (a \
             certificate warning?), or add --replay to send it again now"
        );
    };
    let cause = network_cause(error.trim_start_matches("net::"), &host, &origin, https);
    format!("{error}: {cause}")
}

/// Status 0 for an http:// URL called from an https page, by a host that is not loopback: mixed
/// content, blocked before anything was sent, whatever error the browser wrote (Chromium's
/// `_error` is empty for it, Firefox writes none). `http://localhost` and `http://127.0.0.1`
/// count as potentially trustworthy, so they are not blocked.
pub(super) fn mixed_content(origin: &str, url: &str) -> Option<String> {
    let page = url::Url::parse(origin).ok()?;
    let api = url::Url::parse(url).ok()?;
    let loopback = match api.host()? {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    if page.scheme() != "https" || api.scheme() != "http" || loopback {
        return None;
    }
    let https = url.replacen("http://", "https://", 1);
    Some(format!(
        "mixed content: an https page cannot call an http:// API; call it over https ({https}). \
         The browser blocked it before sending anything (no preflight, nothing reached the \
         server), and no CORS setting changes that"
    ))
}

/// An "answer" with a status but not one header: bytes that were no HTTP response, read as
/// HTTP/0.9 (Firefox records it so: status 200, `HTTP/0.9`, no headers; the browser tests
/// observe it for `http://` on the TLS port). A real HTTP/1.1 or HTTP/2 answer has headers.
pub(super) fn not_http(status: i64, version: &str, no_headers: bool, url: &str) -> Option<String> {
    let plain = url.starts_with("http://");
    if !no_headers || status != 200 || !(version.eq_ignore_ascii_case("HTTP/0.9") || plain) {
        return None;
    }
    let https = url.replacen("http://", "https://", 1);
    Some(format!(
        "the answer has no HTTP headers at all (HTTP/0.9): what answered is not an HTTP server{}",
        if plain {
            format!(": the URL says http:// for a server that speaks HTTPS? Call {https}")
        } else {
            String::new()
        }
    ))
}

/// Added to "no cross-origin request" when the file's page is https: Firefox records nothing of a
/// call it blocks as mixed content (no WebDriver BiDi event either), Chromium a status-0 entry.
pub(super) const MIXED_CONTENT_UNRECORDED: &str = ". The page is https: if it calls an http:// \
    API by a name that is not loopback, that is mixed content: an https page cannot call an \
    http:// API; call it over https. The browser blocks it before sending anything, and Firefox \
    records nothing of it (its console says \"Blocked loading mixed active content\")";

pub(super) const CREDENTIALS_INFERRED: &str = "The file does not record the credentials mode. \
    The browser refused a request that every rule lets through without credentials, and the same \
    answers fail with credentials mode \"include\" (withCredentials: true, fetch's credentials: \
    'include'): so it is judged with credentials (--with-credentials says so yourself).";

pub(super) const NO_PREFLIGHT: &str = "NOTE: the file holds no preflight for this request, \
    though it needs one (step 0): the browser used a preflight it had cached (one that passed is \
    kept for Access-Control-Max-Age seconds, 600 on delivery-api), or the export left it out. So \
    this file cannot show how the server answers a preflight today: a bug such as auth running \
    before CORS stays hidden until the cache expires. Record again with DevTools → Network → \
    Disable cache ticked, or add --replay to send the preflight now.";

/// A 400 preflight without its body: the three rules a CORS layer such as actix-cors refuses
/// for, and what this preflight asked against delivery-api's own lists.
pub(super) fn which_refusal(request: &Message, response: &Message, origin: &str) -> Vec<String> {
    let allow_origin = response.header("access-control-allow-origin").is_some();
    if response.status != 400 || allow_origin || response.problem_detail().is_some() {
        return Vec::new();
    }
    let (methods, allowed_headers) = crate::cors::always_allowed();
    let method = request
        .header("access-control-request-method")
        .unwrap_or_default();
    let refused_headers: Vec<String> = request
        .header("access-control-request-headers")
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty() && !allowed_headers.contains(h))
        .collect();
    let mut lines = vec![
        "Which rule? Neither browser's export keeps a preflight's body, which names it. What \
         this preflight asked, against delivery-api's lists (actix-cors checks the origin, then \
         the method, then the headers, and refuses at the first that fails):"
            .to_owned(),
    ];
    lines.push(if origin == ARTICLE_ORIGIN {
        format!("  - origin {origin}: delivery-api's default, allowed unless --allowed-origin replaced it")
    } else {
        format!(
            "  - origin {origin}: refused unless the server lists it (--allowed-origin {origin}; \
             the default is {ARTICLE_ORIGIN} alone)"
        )
    });
    lines.push(if methods.iter().any(|m| m == method) {
        format!("  - method {method}: allowed")
    } else {
        format!(
            "  - method {method}: refused in any case (delivery-api allows {}, and no flag adds one)",
            methods.join(", ")
        )
    });
    lines.push(if refused_headers.is_empty() {
        "  - request headers: all allowed".to_owned()
    } else {
        format!(
            "  - request header{} {}: refused unless the server runs with {} (always allowed: {})",
            if refused_headers.len() == 1 { "" } else { "s" },
            refused_headers.join(", "),
            refused_headers
                .iter()
                .map(|h| format!("--allow-header {h}"))
                .collect::<Vec<_>>()
                .join(" "),
            allowed_headers.join(", ")
        )
    });
    lines.push(
        "To be sure: the server's log names the rule (one WARN line per refusal), or add \
         --replay to send the preflight again now and read the server's reason."
            .to_owned(),
    );
    lines
}
