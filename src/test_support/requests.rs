//! The request log a test can query: the last [`CAPACITY`] requests the API answered (method,
//! path, status, request id, which layer answered, when, how long), oldest first; filtered by
//! request id; cleared on demand. Bounded: a full ring drops its oldest entry, and each entry's
//! client text is cut (`telemetry::client_text`). No header, query string, body or user name is
//! kept: nothing a credential could hide in.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;

use crate::answered_by::Layer;

/// Requests kept, at most (a few hundred bytes each).
pub const CAPACITY: usize = 1000;

/// One answered request.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// 1, 2, 3…: in the order the answers were given; never reused, even after a clear.
    pub seq: u64,
    /// When the request arrived (milliseconds since the Unix epoch: `new Date(at_unix_ms)`).
    pub at_unix_ms: u64,
    pub method: String,
    /// The path only (no query string), as `telemetry::client_text` shows client text.
    pub path: String,
    pub status: u16,
    /// The `X-Request-Id` the response carried (the client's own, when plausible).
    pub request_id: Option<String>,
    pub answered_by: Layer,
    /// Arrival to response head, the delay a test asked for included.
    pub ms: f64,
    /// What `Prefer` asked for and was honoured (`Preference-Applied`), if anything.
    pub preference_applied: Option<String>,
}

/// What the admin bind's `GET /requests` may filter on.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub request_id: Option<String>,
    /// Only entries after this `seq`.
    pub since: Option<u64>,
}

#[derive(Default)]
pub struct RequestLog {
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    entries: VecDeque<Entry>,
    last_seq: u64,
}

/// An entry before it gets its number.
pub struct Answered {
    pub arrived: SystemTime,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub request_id: Option<String>,
    pub answered_by: Layer,
    pub took: Duration,
    pub preference_applied: Option<String>,
}

impl RequestLog {
    pub fn record(&self, answered: Answered) {
        let at_unix_ms = answered
            .arrived
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut ring = self.ring.lock();
        ring.last_seq += 1;
        let entry = Entry {
            seq: ring.last_seq,
            at_unix_ms,
            method: answered.method,
            path: answered.path,
            status: answered.status,
            request_id: answered.request_id,
            answered_by: answered.answered_by,
            ms: answered.took.as_secs_f64() * 1000.0,
            preference_applied: answered.preference_applied,
        };
        if ring.entries.len() == CAPACITY {
            ring.entries.pop_front();
        }
        ring.entries.push_back(entry);
    }

    /// The entries that match, oldest first.
    pub fn find(&self, filter: &Filter) -> Vec<Entry> {
        let ring = self.ring.lock();
        ring.entries
            .iter()
            .filter(|e| filter.since.is_none_or(|s| e.seq > s))
            .filter(|e| {
                (filter.request_id.as_deref()).is_none_or(|id| e.request_id.as_deref() == Some(id))
            })
            .cloned()
            .collect()
    }

    /// Forgets every entry (the numbering goes on).
    pub fn clear(&self) -> usize {
        let mut ring = self.ring.lock();
        let cleared = ring.entries.len();
        ring.entries.clear();
        cleared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(path: &str, id: &str) -> Answered {
        Answered {
            arrived: SystemTime::now(),
            method: "GET".into(),
            path: path.into(),
            status: 200,
            request_id: Some(id.into()),
            answered_by: Layer::Handler,
            took: Duration::from_millis(1),
            preference_applied: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_entries_and_filters_by_request_id() {
        let log = RequestLog::default();
        for i in 0..CAPACITY + 5 {
            log.record(answered(&format!("/delivery/{i}"), &format!("id-{i}")));
        }
        let all = log.find(&Filter::default());
        assert_eq!(all.len(), CAPACITY, "bounded");
        assert_eq!(all[0].seq, 6, "the oldest went first");
        let one = log.find(&Filter {
            request_id: Some(format!("id-{}", CAPACITY + 4)),
            since: None,
        });
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].path, format!("/delivery/{}", CAPACITY + 4));
        let since = log.find(&Filter {
            request_id: None,
            since: Some((CAPACITY + 3) as u64),
        });
        assert_eq!(since.len(), 2);
        assert_eq!(log.clear(), CAPACITY);
        assert!(log.find(&Filter::default()).is_empty());
        log.record(answered("/health", "after"));
        assert_eq!(log.find(&Filter::default())[0].seq, (CAPACITY + 6) as u64);
    }
}
