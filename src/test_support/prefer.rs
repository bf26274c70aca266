//! The `Prefer` request header (RFC 7240) a test sends to ask for a fault or a delay:
//! `Prefer: code=503`, `Prefer: delay=250`, or both (`Prefer: code=503, delay=250`, or two
//! `Prefer` fields). As the RFC says: names are case-insensitive, the first instance of a
//! preference counts, parameters (`; …`) and preferences this server does not know
//! (`return=minimal`, `respond-async`) are ignored, and one it cannot honour (`code=200`,
//! `delay=soon`) is ignored too, never an error. What was honoured is sent back in
//! `Preference-Applied`, so a test can tell an injected 503 from a real one.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};

pub const PREFER: HeaderName = HeaderName::from_static("prefer");
pub const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// The longest delay a request can ask for; a longer one is shortened to this. A test of a
/// spinner or of a client's timeout needs no more, and a request can hold its connection no
/// longer than the default body deadline.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// The statuses `code=` can ask for: the problems this API really answers, each injected as the
/// layer that answers it would (`faults.rs`).
pub const CODES: [u16; 12] = [400, 401, 404, 408, 409, 413, 415, 422, 429, 500, 503, 507];

/// Preferences looked at per request, at most (the request head's size bounds them anyway).
const MAX_PREFERENCES: usize = 32;

/// What one request asked for and this server will honour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub code: Option<StatusCode>,
    pub delay: Option<Duration>,
    /// `code=…` or `delay=…` values that could not be honoured, for the log (client text).
    pub ignored: Vec<String>,
}

impl Preferences {
    /// Reads every `Prefer` field of a request.
    pub fn parse<'a>(fields: impl Iterator<Item = &'a HeaderValue>) -> Self {
        let mut found = Self::default();
        let (mut seen_code, mut seen_delay) = (false, false);
        let preferences = fields
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .take(MAX_PREFERENCES);
        for preference in preferences {
            // `name [= value] *(; parameter)`: the parameters change nothing here.
            let head = preference.split(';').next().unwrap_or_default();
            let (name, value) = head.split_once('=').unwrap_or((head, ""));
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "code" if !seen_code => {
                    seen_code = true;
                    found.code = value
                        .parse::<u16>()
                        .ok()
                        .filter(|c| CODES.contains(c))
                        .and_then(|c| StatusCode::from_u16(c).ok());
                    if found.code.is_none() {
                        found.ignored.push(format!("code={value}"));
                    }
                }
                "delay" if !seen_delay => {
                    seen_delay = true;
                    found.delay = value
                        .parse::<u64>()
                        .ok()
                        .map(|ms| Duration::from_millis(ms).min(MAX_DELAY));
                    if found.delay.is_none() {
                        found.ignored.push(format!("delay={value}"));
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// Anything to do?
    pub fn any(&self) -> bool {
        self.code.is_some() || self.delay.is_some()
    }

    /// `Preference-Applied`: what was honoured, as it was honoured (a delay after capping).
    pub fn applied(&self) -> Option<HeaderValue> {
        let mut parts = Vec::new();
        if let Some(code) = self.code {
            parts.push(format!("code={}", code.as_u16()));
        }
        if let Some(delay) = self.delay {
            parts.push(format!("delay={}", delay.as_millis()));
        }
        (!parts.is_empty()).then(|| HeaderValue::from_str(&parts.join(", ")).ok())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(fields: &[&str]) -> Preferences {
        let values: Vec<HeaderValue> = fields
            .iter()
            .map(|f| HeaderValue::from_str(f).expect("a value"))
            .collect();
        Preferences::parse(values.iter())
    }

    #[test]
    fn code_and_delay_are_read_as_rfc_7240_says() {
        let both = parse(&["code=503, delay=250"]);
        assert_eq!(both.code, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(both.delay, Some(Duration::from_millis(250)));
        assert_eq!(
            both.applied().expect("applied"),
            "code=503, delay=250",
            "what was honoured is said back"
        );
        let split = parse(&["Code = \"429\" ; why=test", "return=minimal", "DELAY=5"]);
        assert_eq!(split.code, Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(split.delay, Some(Duration::from_millis(5)));
        assert!(split.ignored.is_empty(), "unknown preferences are no error");
        let first = parse(&["code=500", "code=503"]);
        assert_eq!(
            first.code,
            Some(StatusCode::INTERNAL_SERVER_ERROR),
            "the first counts"
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_ignored_and_a_long_delay_is_capped() {
        let odd = parse(&["code=200, delay=soon"]);
        assert_eq!((odd.code, odd.delay), (None, None));
        assert_eq!(odd.ignored, ["code=200", "delay=soon"]);
        assert!(!odd.any() && odd.applied().is_none());
        let long = parse(&["delay=86400000"]);
        assert_eq!(long.delay, Some(MAX_DELAY));
        assert_eq!(long.applied().expect("applied"), "delay=10000");
        assert_eq!(parse(&["respond-async, wait=5"]), Preferences::default());
    }
}
