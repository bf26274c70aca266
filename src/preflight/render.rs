//! The report as text, step by step, with the verdict first.

use std::fmt::Write as _;

use super::run::{Exchange, Report};
use crate::fetch::Outcome;

/// The human-readable report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let req = &report.request;
    if let Some(recorded) = &report.recorded {
        let _ = writeln!(out, "== {recorded}");
    }
    let _ = writeln!(
        out,
        "{} {} from origin {}",
        req.method, report.url, req.origin
    );
    if req.with_credentials {
        let _ = writeln!(out, "credentials mode: include (withCredentials: true)");
    }
    let _ = writeln!(out);
    if report.preflight_reasons.is_empty() {
        let _ = writeln!(
            out,
            "0. Preflight needed? no: a simple request (safelisted method and headers)"
        );
    } else {
        let _ = writeln!(out, "0. Preflight needed? yes, because:");
        for reason in &report.preflight_reasons {
            let _ = writeln!(out, "     - {reason}");
        }
    }
    let mut step = 1;
    if let Some(p) = &report.preflight {
        render_exchange(&mut out, step, "Preflight", &report.url, p);
        step += 1;
    }
    match &report.actual {
        Some(a) => render_exchange(&mut out, step, "Actual request", &report.url, a),
        None => {
            let why = report
                .not_sent
                .as_deref()
                .unwrap_or("the browser stops at a failed preflight");
            let _ = writeln!(out, "\n{step}. Actual request: not sent ({why})");
        }
    }
    let _ = writeln!(out, "\n{}", report.verdict);
    for note in &report.notes {
        let _ = writeln!(out, "{note}");
    }
    out
}

fn render_exchange(out: &mut String, step: usize, title: &str, url: &str, x: &Exchange) {
    let _ = writeln!(out, "\n{step}. {title}: {} {url}", x.method);
    for (name, value) in &x.request_headers {
        let _ = writeln!(out, "     > {name}: {value}");
    }
    if let Some(error) = &x.error {
        let _ = writeln!(out, "   FAIL  no response: {error}");
        return;
    }
    if let Some(res) = &x.response {
        let _ = writeln!(out, "     < status {}", res.status);
        for (name, value) in res.headers.iter().filter(|(n, _)| interesting(n)) {
            let _ = writeln!(out, "     < {name}: {value}");
        }
    }
    for check in &x.checks {
        let tag = match check.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Warn => "WARN",
            Outcome::Info => "INFO",
            Outcome::NotReached => "--  ",
        };
        if check.outcome == Outcome::NotReached {
            let _ = writeln!(out, "   {tag}  not reached: {}", check.rule);
            continue;
        }
        let _ = writeln!(out, "   {tag}  {}", check.rule);
        if let Some(cause) = &check.cause {
            let _ = writeln!(out, "         -> {cause}");
        }
    }
}

fn interesting(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("access-control-")
        || matches!(n.as_str(), "vary" | "www-authenticate" | "location")
}
