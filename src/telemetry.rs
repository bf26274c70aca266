//! Logging with tracing. `RUST_LOG` overrides the default filter. Nothing here ever records the
//! Authorization header or a password.
//!
//! Anything a client can trigger at will is logged at most once per interval, with a count of
//! the occurrences in between ([`Throttle`]): otherwise any client could fill the disk with log
//! lines. actix-http logs every malformed HTTP/1.1 request (and every connection reset mid-request)
//! as its own ERROR line; those are summarised here instead, at WARN.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, filter};

/// How often a summarised cause may write a line.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// Installs the global subscriber once; later calls are no-ops (tests call it per test).
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter::filter_fn(|meta| !is_connection_error(meta)));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(ConnectionErrorSummary)
        .try_init();
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
