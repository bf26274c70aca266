//! Logging with tracing. `RUST_LOG` overrides the default filter. Nothing here ever records the
//! Authorization header or a password.
//!
//! Anything a client can trigger at will is logged at most once per interval, with a count of
//! the occurrences in between ([`Throttle`]): otherwise any client could fill the disk with log
//! lines. actix-http logs every malformed HTTP/1.1 request (and every connection reset mid-request)
//! as its own ERROR line; those are summarised here instead, at WARN, and the libraries' own
//! warnings (h2, rustls, actix-server…) one line a minute per library. (About 400 lines with its
//! tests: the subscriber and the throttles it needs are one thing.)

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, filter};

/// How often a summarised cause may write a line.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// How log lines are written on stderr (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    Text,
    /// One JSON object per line (tracing-subscriber's JSON format).
    Json,
}

/// Installs the global subscriber once, as text; later calls are no-ops (tests call it per test).
pub fn init(default_filter: &str) {
    init_as(LogFormat::Text, default_filter);
}

/// Like [`init`], in the given format. Either way the lines go to stderr: stdout carries only
/// the ready line (`startup/ready.rs`), so a harness can read it without parsing the log.
pub fn init_as(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layers(format, std::io::stderr))
        .try_init();
}

/// The output, minus what a client can make the libraries write at will, plus the summaries
/// that replace it. (Separate from [`init_as`] so that a test can write into a buffer.)
fn layers<S, W>(format: LogFormat, writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let output = match format {
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            fmt.with_ansi(ansi).boxed()
        }
        // The event's fields (message included) at the top level of each object, beside
        // timestamp, level, target and the request's span (method, route, status…).
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    output
        .with_filter(filter::filter_fn(|meta| {
            !is_connection_error(meta) && library(meta).is_none()
        }))
        .and_then(ConnectionErrorSummary)
        .and_then(LibrarySummary {
            throttles: Throttles::per_minute(LIBRARIES.len()),
        })
}

/// At most one log line per interval for one cause. `admit` says whether this occurrence may be
/// logged, and how many were held back since the last line that was.
pub struct Throttle {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    pub const fn per_minute() -> Self {
        Self::new(SUMMARY_INTERVAL)
    }

    /// `Some(held_back)` when this occurrence should be logged; `None` when it was only counted.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock();
        let (last, held_back) = &mut *state;
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            *held_back += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(held_back))
    }
}

/// The suffix of a throttled line: how many like it were held back since the last one.
pub fn held_back(count: u64) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(" (and {count} similar not logged since the last such line)")
    }
}

/// Longest client-chosen text (a path) put in a log line.
const MAX_CLIENT_TEXT: usize = 100;

/// Text a client chose (a request path), for a log line: capped, and quoted if it holds anything
/// but printable ASCII, so it cannot forge a line or a terminal escape.
pub fn client_text(text: &str) -> String {
    let text: String = text.chars().take(MAX_CLIENT_TEXT).collect();
    if text.chars().all(|c| c.is_ascii_graphic()) {
        text
    } else {
        format!("{text:?}")
    }
}

/// A [`Throttle`] per key, for causes a client names itself (an Origin, a header name): each
/// distinct cause gets its own first line, identical repeats are counted. At most `capacity` keys
/// are tracked; past that, new keys share one overflow throttle, so a client that varies the key
/// grows neither memory nor the log (at most `capacity + 1` lines per interval).
pub struct Throttles<K> {
    every: Duration,
    capacity: usize,
    keys: Mutex<HashMap<K, (Instant, u64)>>,
    overflow: Throttle,
}

impl<K: Hash + Eq> Throttles<K> {
    pub fn new(every: Duration, capacity: usize) -> Self {
        Self {
            every,
            capacity,
            keys: Mutex::new(HashMap::with_capacity(capacity)),
            overflow: Throttle::new(every),
        }
    }

    pub fn per_minute(capacity: usize) -> Self {
        Self::new(SUMMARY_INTERVAL, capacity)
    }

    /// As [`Throttle::admit`], for the cause `key`.
    pub fn admit(&self, key: K) -> Option<u64> {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: K, now: Instant) -> Option<u64> {
        let mut keys = self.keys.lock();
        if !keys.contains_key(&key) && keys.len() >= self.capacity {
            // Forget the causes that are quiet: their interval is over and nothing is held back.
            keys.retain(|_, (last, held_back)| {
                *held_back > 0 || now.duration_since(*last) < self.every
            });
            if keys.len() >= self.capacity {
                drop(keys);
                return self.overflow.admit_at(now);
            }
        }
        match keys.get_mut(&key) {
            Some((last, held_back)) if now.duration_since(*last) < self.every => {
                *held_back += 1;
                None
            }
            Some((last, held_back)) => {
                *last = now;
                Some(std::mem::take(held_back))
            }
            None => {
                keys.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

/// actix-http's per-connection ERROR events (`stream error: Parse error: …`, resets, 431s).
fn is_connection_error(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && meta.target().starts_with("actix_http::h1")
}

/// Replaces actix-http's one-ERROR-line-per-malformed-request with a WARN summary per interval.
struct ConnectionErrorSummary;

static CONNECTION_ERRORS: Throttle = Throttle::per_minute();

impl<S: Subscriber> Layer<S> for ConnectionErrorSummary {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if !is_connection_error(event.metadata()) {
            return;
        }
        let Some(also) = CONNECTION_ERRORS.admit() else {
            return;
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        tracing::warn!(
            target: "delivery_api::connections",
            also,
            "an HTTP/1.1 connection ended in error ({}): a malformed request (answered 400 or \
             431, then closed) or a client gone mid-request. Further ones are counted, and \
             summarised at most once a minute (`also` = how many since the last line)",
            message.0
        );
    }
}

/// Libraries whose warnings and errors a client can cause at will (one per reset HTTP/2 stream,
/// per failed handshake, per refused accept): each library gets at most one line per minute,
/// with the count of the ones held back. (actix-http's HTTP/1.1 errors have their own summary.)
const LIBRARIES: [&str; 5] = ["h2", "rustls", "actix_server", "actix_http", "actix_tls"];

/// The library a WARN or ERROR line comes from, if it is one of [`LIBRARIES`].
fn library(meta: &Metadata<'_>) -> Option<&'static str> {
    if *meta.level() > Level::WARN || is_connection_error(meta) {
        return None;
    }
    let target = meta.target();
    LIBRARIES.into_iter().find(|library| {
        target
            .strip_prefix(library)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Lets each library's first warning of the minute through, as one of ours, and counts the rest.
struct LibrarySummary {
    throttles: Throttles<&'static str>,
}

impl<S: Subscriber> Layer<S> for LibrarySummary {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Some(library) = library(event.metadata()) else {
            return;
        };
        let Some(held_back) = self.throttles.admit(library) else {
            return;
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        tracing::warn!(
            target: "delivery_api::libraries",
            library,
            "{} {}: {}{}",
            event.metadata().level(),
            event.metadata().target(),
            message.0.trim_matches('"'),
            held_back_per_minute(held_back)
        );
    }
}

/// The suffix of a library's summarised line.
fn held_back_per_minute(count: u64) -> String {
    if count == 0 {
        " (this library's further warnings are counted, and one is logged a minute)".to_owned()
    } else {
        format!(" (and {count} more from this library since the last such line)")
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_flood_of_library_warnings_writes_one_line_a_minute_per_library() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(layers(LogFormat::Text, move || writer.clone()));
        // Global, as in the binary: a scoped subscriber drops the events a layer emits while
        // it handles one (tracing's re-entrancy guard), which is how the summary is written.
        // The only test in this binary that installs one.
        tracing::subscriber::set_global_default(subscriber).expect("no subscriber yet");
        {
            for _ in 0..1000 {
                tracing::warn!(
                    target: "h2::proto::streams::recv",
                    "recv_reset; remotely-reset pending-accept streams reached limit"
                );
                tracing::warn!(target: "rustls::conn", "Sending fatal alert BadCertificate");
            }
            tracing::warn!(target: "delivery_api::cors", "one of ours");
            tracing::info!(target: "actix_server::builder", "starting 2 workers");
        }
        let text = String::from_utf8(captured.0.lock().clone()).expect("UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
        assert_eq!(count("recv_reset"), 1, "{text}");
        assert_eq!(count("BadCertificate"), 1, "{text}");
        assert_eq!(count("one of ours"), 1, "our own lines are not summarised");
        assert_eq!(
            count("starting 2 workers"),
            1,
            "information is not summarised"
        );
        assert_eq!(count("pending-accept streams"), 1, "{text}");
    }

    #[test]
    fn a_throttle_admits_one_per_interval_and_counts_the_rest() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.admit(), Some(0), "the first occurrence is logged");
        for _ in 0..5 {
            assert_eq!(
                throttle.admit(),
                None,
                "the rest of the interval is counted"
            );
        }
        let open = Throttle::new(Duration::ZERO);
        assert_eq!(open.admit(), Some(0));
        assert_eq!(open.admit(), Some(0), "a new interval logs again");
    }

    #[test]
    fn keyed_throttles_log_each_cause_once_and_bound_the_keys() {
        let throttles = Throttles::new(Duration::from_secs(60), 2);
        let start = Instant::now();
        assert_eq!(
            throttles.admit_at("a", start),
            Some(0),
            "a new cause is logged"
        );
        assert_eq!(throttles.admit_at("b", start), Some(0), "another cause too");
        assert_eq!(throttles.admit_at("a", start), None, "a repeat is counted");
        // The table is full: new causes share the overflow throttle.
        assert_eq!(throttles.admit_at("c", start), Some(0));
        assert_eq!(throttles.admit_at("d", start), None);
        assert_eq!(
            throttles.keys.lock().len(),
            2,
            "never more keys than the capacity"
        );
        let later = start + Duration::from_secs(61);
        assert_eq!(
            throttles.admit_at("a", later),
            Some(1),
            "the held-back repeat is reported"
        );
        // "b" is quiet and its interval is over: it makes room for "e".
        assert_eq!(throttles.admit_at("e", later), Some(0));
        assert!(!throttles.keys.lock().contains_key("b"));
        assert_eq!(
            throttles.admit_at("f", later),
            Some(1),
            "overflow: d was held back"
        );
    }

    #[test]
    fn the_count_held_back_is_reported_with_the_next_line() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        let start = Instant::now();
        assert_eq!(throttle.admit_at(start), Some(0));
        assert_eq!(throttle.admit_at(start), None);
        assert_eq!(throttle.admit_at(start + Duration::from_secs(3599)), None);
        let next_interval = start + Duration::from_secs(3601);
        assert_eq!(throttle.admit_at(next_interval), Some(2));
        assert_eq!(throttle.admit_at(next_interval), None);
    }
}
