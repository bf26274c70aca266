//! Sends the two requests a browser would (the preflight exactly as a browser sends it, then the
//! actual request) and judges each response with the Fetch rules (`crate::fetch`). One cohesive
//! client, about 400 lines with its tests.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use serde::Serialize;

use super::PreflightArgs;
use crate::fetch::{self as rules, Check, CorsRequest, Outcome, SeenResponse};

const DEFAULT_ACCEPT: &str = "application/json, text/plain, */*";
const DEFAULT_CONTENT_TYPE: &str = "application/json; charset=utf-8";
const PLACEHOLDER_USER: &str = "user:password";

#[derive(Debug, Serialize)]
pub struct Report {
    /// With --har: where in the file the exchange was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    pub url: String,
    pub request: CorsRequest,
    /// Why the browser preflights (empty: it does not).
    pub preflight_reasons: Vec<String>,
    pub preflight: Option<Exchange>,
    pub actual: Option<Exchange>,
    /// Why the actual request was not sent although the browser would have sent it (an unsafe
    /// method without `--send`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_sent: Option<String>,
    /// True when a browser would let the page read the actual response.
    pub readable: bool,
    pub verdict: String,
    /// What the verdict rests on that the exchange itself does not show (with --har: what the
    /// file cannot tell, and how to find it out), one line each, printed under the verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// With --har --replay: the verdict when the same exchange is sent again now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<String>,
}

/// One request/response, as sent and as seen, with the rules checked on it.
#[derive(Debug, Serialize)]
pub struct Exchange {
    pub method: String,
    pub request_headers: Vec<(String, String)>,
    pub response: Option<SeenResponse>,
    /// Set when no response arrived (the browser reports status 0).
    pub error: Option<String>,
    pub checks: Vec<Check>,
    /// A refused preflight's reason in the server's own words: the `detail` of its problem+json
    /// body (this server names the origin, method or header it refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Exchange {
    pub(super) fn passed(&self) -> bool {
        self.error.is_none() && rules::passes(&self.checks)
    }
}

/// Runs the whole exchange the way a browser would.
pub async fn run(args: &PreflightArgs) -> anyhow::Result<Report> {
    let request = cors_request(args)?;
    let client = client(args)?;
    let url = args
        .url
        .as_ref()
        .context("which URL? Give one, or --har FILE")?
        .as_str()
        .to_owned();
    let preflight_reasons = rules::preflight_reasons(&request);

    let preflight = if preflight_reasons.is_empty() {
        None
    } else {
        Some(send_preflight(&client, &url, &request).await)
    };
    let blocked = preflight.as_ref().is_some_and(|p| !p.passed());
    let safe = matches!(request.method.as_str(), "GET" | "HEAD");
    let not_sent = (!blocked && !safe && !args.send).then(|| {
        format!(
            "{} is not GET or HEAD and may change data on the server: pass --send to send it",
            request.method
        )
    });
    let actual = if blocked || not_sent.is_some() {
        None // a failed preflight: the browser stops here, the request is never sent
    } else {
        Some(send_actual(&client, &url, &request, args.data.as_deref()).await)
    };
    let readable = actual.as_ref().is_some_and(Exchange::passed);
    let verdict = match &not_sent {
        Some(why) => format!(
            "PREFLIGHT ONLY: {}; the actual request was not sent ({why}).",
            if preflight.is_some() {
                "the preflight passes"
            } else {
                "no preflight is needed"
            }
        ),
        None => verdict(&request, preflight.as_ref(), actual.as_ref(), readable),
    };
    let verdict = with_detail(verdict, preflight.as_ref());
    let mut report = Report {
        recorded: None,
        url,
        request,
        preflight_reasons,
        preflight,
        actual,
        not_sent,
        readable,
        verdict,
        notes: Vec::new(),
        replayed: None,
    };
    report.redact();
    Ok(report)
}

impl Report {
    /// Credentials never leave the tool: not in the text report, not in the JSON.
    pub(super) fn redact(&mut self) {
        let sent = [self.preflight.as_mut(), self.actual.as_mut()];
        let all = sent
            .into_iter()
            .flatten()
            .flat_map(|x| x.request_headers.iter_mut())
            .chain(self.request.headers.iter_mut());
        for (name, value) in all {
            if name.eq_ignore_ascii_case("authorization") {
                let scheme = value.split(' ').next().unwrap_or_default();
                *value = format!("{scheme} <redacted>");
            }
        }
    }
}

/// The request the page makes: the article's by default, adjusted by the flags.
pub fn cors_request(args: &PreflightArgs) -> anyhow::Result<CorsRequest> {
    let user = args.user.as_deref().unwrap_or(PLACEHOLDER_USER);
    let basic = base64::engine::general_purpose::STANDARD.encode(user);
    let mut headers: Vec<(String, String)> = vec![
        ("Accept".into(), DEFAULT_ACCEPT.into()),
        ("Authorization".into(), format!("Basic {basic}")),
        ("Content-Type".into(), DEFAULT_CONTENT_TYPE.into()),
    ];
    for raw in &args.headers {
        let (name, value) = raw
            .split_once(':')
            .with_context(|| format!("--header {raw:?} is not of the form 'Name: value'"))?;
        let (name, value) = (name.trim(), value.trim());
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        // As with curl, `--header 'Name:'` removes a default header.
        if !value.is_empty() {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let method = normalize_method(&args.method);
    reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| anyhow::anyhow!("--method {:?} is not an HTTP method", args.method))?;
    Ok(CorsRequest {
        origin: args.origin.clone(),
        method,
        headers,
        with_credentials: args.with_credentials,
    })
}

/// What `fetch()` does to a method (Fetch, "normalize a method"): the six standard ones are
/// upper-cased whatever their case; any other stays as written, so `patch` is sent (and
/// preflighted) as `patch`, which an `Access-Control-Allow-Methods: PATCH` does not allow.
pub(super) fn normalize_method(method: &str) -> String {
    const NORMALIZED: [&str; 6] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
    match NORMALIZED.iter().find(|m| m.eq_ignore_ascii_case(method)) {
        Some(m) => (*m).to_owned(),
        None => method.to_owned(),
    }
}

fn client(args: &PreflightArgs) -> anyhow::Result<reqwest::Client> {
    // One crypto provider for the process (ring, as the server uses).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        // Browsers never follow a redirect on a preflight; show it instead.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .user_agent(concat!(
            "delivery-api-preflight/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(path) = &args.cacert {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read --cacert {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .with_context(|| {
                format!(
                    "--cacert {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----, \
                     e.g. certs/dev-ca.crt)",
                    path.display()
                )
            })?;
        builder = builder.tls_certs_only(certs);
    }
    if args.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().context("cannot build the HTTP client")
}

async fn send_preflight(client: &reqwest::Client, url: &str, req: &CorsRequest) -> Exchange {
    // Exactly what a browser sends: no credentials, no Authorization, the unsafe names sorted.
    let mut headers = vec![
        ("Origin".to_owned(), req.origin.clone()),
        (
            "Access-Control-Request-Method".to_owned(),
            req.method.clone(),
        ),
    ];
    let names = rules::unsafe_header_names(&req.headers);
    if !names.is_empty() {
        headers.push(("Access-Control-Request-Headers".to_owned(), names.join(",")));
    }
    headers.extend([
        ("Accept".to_owned(), "*/*".to_owned()),
        ("Sec-Fetch-Mode".to_owned(), "cors".to_owned()),
        ("Sec-Fetch-Dest".to_owned(), "empty".to_owned()),
    ]);
    let sent = exchange(client, reqwest::Method::OPTIONS, url, &headers, None).await;
    let detail = sent.as_ref().ok().and_then(|(_, detail)| detail.clone());
    let mut preflight = finish("OPTIONS", headers, sent.map(|(seen, _)| seen), |res| {
        rules::check_preflight(req, res)
    });
    preflight.detail = detail;
    preflight
}

async fn send_actual(
    client: &reqwest::Client,
    url: &str,
    req: &CorsRequest,
    body: Option<&str>,
) -> Exchange {
    let mut headers = vec![("Origin".to_owned(), req.origin.clone())];
    headers.extend(req.headers.iter().cloned());
    // Checked when the request was built (`--method`): the method announced in the preflight
    // is the one sent here, never a substitute.
    let sent = match reqwest::Method::from_bytes(req.method.as_bytes()) {
        Ok(method) => exchange(client, method, url, &headers, body)
            .await
            .map(|(seen, _)| seen),
        Err(_) => Err(format!("{:?} is not an HTTP method", req.method)),
    };
    finish(&req.method, headers, sent, |res| {
        rules::check_actual(req, res)
    })
}

async fn exchange(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(String, String)],
    body: Option<&str>,
) -> Result<(SeenResponse, Option<String>), String> {
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let res = request.send().await.map_err(describe_error)?;
    let seen = seen(&res);
    Ok((seen, refusal_detail(res).await))
}

/// The `detail` of a 400's problem+json body: how this server says why it refused a preflight.
/// Other answers' bodies are not read (a 200 may be a whole list of deliveries).
async fn refusal_detail(mut res: reqwest::Response) -> Option<String> {
    let problem = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if res.status() != reqwest::StatusCode::BAD_REQUEST || !problem {
        return None;
    }
    // A few hundred bytes from this server; any server's, read up to 16 KiB.
    let mut bytes = Vec::new();
    while let Some(chunk) = res.chunk().await.ok()? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > 16 * 1024 {
            return None;
        }
    }
    let body: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    body["detail"].as_str().map(String::from)
}

/// The verdict, with a refused preflight's reason in the server's words when it gave one: one
/// line of at most 300 characters, without control characters (any server may answer).
pub(super) fn with_detail(verdict: String, preflight: Option<&Exchange>) -> String {
    match preflight.and_then(|p| p.detail.as_deref()) {
        Some(detail) if !preflight.is_some_and(Exchange::passed) => {
            let mut said: String = detail
                .chars()
                .filter(|c| !c.is_control())
                .take(301)
                .collect();
            if said.chars().count() > 300 {
                said = said.chars().take(299).chain(['…']).collect();
            }
            format!("{verdict} The server's answer says: {said}")
        }
        _ => verdict,
    }
}

/// A response as the CORS rules see it: status and headers (also used by this project's tests).
pub fn seen(res: &reqwest::Response) -> SeenResponse {
    SeenResponse {
        status: res.status().as_u16(),
        headers: res
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    }
}

pub(super) fn finish(
    method: &str,
    request_headers: Vec<(String, String)>,
    sent: Result<SeenResponse, String>,
    check: impl FnOnce(&SeenResponse) -> Vec<Check>,
) -> Exchange {
    match sent {
        Ok(res) => Exchange {
            method: method.to_owned(),
            request_headers,
            checks: check(&res),
            response: Some(res),
            error: None,
            detail: None,
        },
        Err(error) => Exchange {
            method: method.to_owned(),
            request_headers,
            response: None,
            error: Some(error),
            checks: Vec::new(),
            detail: None,
        },
    }
}

/// A transport failure, in the words a frontend developer needs (the page would see status 0).
fn describe_error(e: reqwest::Error) -> String {
    let (connect, timeout) = (e.is_connect(), e.is_timeout());
    // The whole chain, "outer: inner: …", as anyhow's alternate form prints it.
    let chain = format!("{:#}", anyhow::Error::from(e));
    let hint = if chain.contains("certificate") || chain.contains("UnknownIssuer") {
        " (the certificate is not trusted: a browser shows this as status 0 too; pass --cacert certs/dev-ca.crt, or trust the CA)"
    } else if chain.contains("invalid HTTP version") || chain.contains("HTTP/0.9") {
        " (what answered is not plain HTTP: an https:// server called with http://? A browser \
         shows this as status 0, net::ERR_INVALID_HTTP_RESPONSE in Chromium)"
    } else if connect {
        " (nothing answers there: is the server running on that port?)"
    } else if timeout {
        " (no answer within 15 s)"
    } else {
        ""
    };
    format!("{chain}{hint}")
}

pub(super) fn verdict(
    req: &CorsRequest,
    preflight: Option<&Exchange>,
    actual: Option<&Exchange>,
    readable: bool,
) -> String {
    let first_failure = |x: &Exchange| {
        x.error.clone().or_else(|| {
            x.checks
                .iter()
                .find(|c| c.outcome == Outcome::Fail)
                .map(|c| c.cause.clone().unwrap_or_else(|| c.rule.clone()))
        })
    };
    if let Some(reason) = preflight.and_then(no_cors_at_all) {
        return format!(
            "FAIL: the browser blocks the request at the preflight; the page sees status 0. {reason}"
        );
    }
    if let Some(reason) = preflight.and_then(first_failure) {
        return format!(
            "FAIL: the browser blocks the request at the preflight; the page sees status 0. {reason}"
        );
    }
    if let Some(reason) = actual.filter(|_| !readable).and_then(no_cors_at_all) {
        // After a preflight that passed, the server has a CORS layer: this response went around
        // it (a 401 or 403 gets the rules' own reading: error responses must pass through CORS).
        let reason = actual
            .filter(|_| preflight.is_some_and(Exchange::passed))
            .and_then(outside_cors)
            .unwrap_or(reason);
        return format!("FAIL: the browser blocks the response; the page sees status 0. {reason}");
    }
    match actual {
        Some(a) if readable => {
            let status = a.response.as_ref().map_or(0, |r| r.status);
            format!(
                "PASS: a page on {} can read the response (status {status}).",
                req.origin
            )
        }
        Some(a) => format!(
            "FAIL: the browser blocks the response; the page sees status 0. {}",
            first_failure(a).unwrap_or_default()
        ),
        None => "FAIL: no request was made".to_owned(),
    }
}

/// A response without CORS headers after a preflight that passed (troubleshooting row 3b): the
/// origin is allowed, so this response never went through the CORS layer.
fn outside_cors(x: &Exchange) -> Option<String> {
    let status = x.response.as_ref()?.status;
    Some(if status == 431 {
        "the request got 431 (request headers too large) without Access-Control-Allow-Origin, \
         after a preflight that passed: it was answered below the CORS layer (the HTTP layer \
         refuses a header list past its limit before any middleware runs). Send smaller headers \
         (a token or cookie that grew?), or raise the limit (delivery-api: --h2-max-header-list)"
            .to_owned()
    } else {
        format!(
            "the request got {status} without Access-Control-Allow-Origin, after a preflight that \
             passed: the response was produced outside the CORS layer (an error path that skips \
             it, or a proxy's own answer). Make every response, errors included, pass through \
             CORS (nginx: `add_header ... always`)"
        )
    })
}

/// A response without a single `Access-Control-*` header, in plain words. Not for 400/401/403
/// and redirects: those have a more precise reading (a CORS layer's refusal, auth before CORS,
/// a redirect), given by the rules.
fn no_cors_at_all(x: &Exchange) -> Option<String> {
    let res = x.response.as_ref()?;
    let any_cors = res
        .headers
        .iter()
        .any(|(name, _)| name.to_ascii_lowercase().starts_with("access-control-"));
    if any_cors || matches!(res.status, 300..=399 | 400 | 401 | 403) {
        return None;
    }
    Some(format!(
        "The server sent no CORS headers at all (status {}): nothing on it handles CORS for this \
         URL. Add a CORS layer that covers this route (and answers OPTIONS), or call it from the \
         same origin.",
        res.status
    ))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Preflight {
        #[command(flatten)]
        args: PreflightArgs,
    }

    fn args(method: &str) -> PreflightArgs {
        let url = "https://localhost:8443/delivery/all";
        Preflight::try_parse_from(["preflight", url, "--method", method])
            .expect("args")
            .args
    }

    #[test]
    fn an_invalid_method_is_refused_not_replaced_by_get() {
        let url = "https://localhost:8443/delivery/all";
        for (method, reason) in [
            ("GE T", "not an HTTP method"),
            ("", "not an HTTP method"),
            ("TRACE", "forbidden method"),
            ("connect", "forbidden method"),
        ] {
            let err = Preflight::try_parse_from(["preflight", url, "--method", method])
                .err()
                .expect(method)
                .to_string();
            assert!(err.contains(reason), "{method:?}: {err}");
        }
    }

    #[test]
    fn methods_are_normalised_as_fetch_does() {
        assert_eq!(cors_request(&args("put")).expect("ok").method, "PUT");
        assert_eq!(cors_request(&args("delete")).expect("ok").method, "DELETE");
        // Not one of the six: sent as written, and preflighted as written.
        assert_eq!(cors_request(&args("patch")).expect("ok").method, "patch");
    }
}
