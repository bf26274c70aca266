//! Serialized read responses (the HTTP side of the store's reads), kept while the data has not
//! changed: the `GET /delivery/all` body, and the bodies of recently read single deliveries
//! (`GET /delivery/{id}`, at most [`MAX_ITEMS`]).
//!
//! Memory is bounded by construction: one list body exists per revision, built by one request at
//! a time (the others wait for it, then share it), serialized row by row as the rows are read,
//! and sent as slices of that one buffer ([`Sliced`]), never copied whole into a connection.
//!
//! Correctness rests on the database, not on timing: every request reads `deliveries_revision`
//! (bumped by a trigger on any write, by any process; see `revision.rs`) and a body is reused
//! only when it was built at that same revision. So a response is never older than the last
//! acknowledged write, including writes by another process. The revision is also the list's ETag.
//! Rows are always read *after* the revision, so what is cached under it is at least that new.

use bytes::Bytes;
use hashlink::LruCache;
use parking_lot::Mutex;
use serde::Serialize;

use super::wire::Delivery;
use crate::store::deliveries;
use crate::store::{Db, StoreError};

/// Single deliveries kept per revision (a few hundred bytes each).
pub const MAX_ITEMS: usize = 4096;

pub struct ReadCache {
    /// (revision, body, number of deliveries)
    list: Mutex<Option<(u64, Bytes, usize)>>,
    /// Held while a list body is built: concurrent misses wait and share it, instead of each
    /// building its own copy (8 requests at once were 8 copies of a 97 MB list).
    building: tokio::sync::Mutex<()>,
    items: Mutex<Items>,
}

/// The single-delivery bodies built at `revision`; cleared when a newer revision is seen.
struct Items {
    revision: u64,
    bodies: LruCache<i64, Bytes>,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self {
            list: Mutex::default(),
            building: tokio::sync::Mutex::new(()),
            items: Mutex::new(Items {
                revision: 0,
                bodies: LruCache::new(MAX_ITEMS),
            }),
        }
    }
}

impl ReadCache {
    /// The whole list as JSON at `revision` (the cached body if it was built at that revision,
    /// otherwise read and serialized again), and the number of deliveries in it.
    pub async fn list(&self, db: &Db, revision: u64) -> Result<(Bytes, usize), StoreError> {
        if let Some(cached) = self.cached_list(revision) {
            return Ok(cached);
        }
        let _turn = self.building.lock().await;
        if let Some(cached) = self.cached_list(revision) {
            return Ok(cached); // built by the request this one waited for
        }
        let mut json = Vec::with_capacity(2);
        json.push(b'[');
        let mut failed = None;
        let count = deliveries::for_each(db, |row| {
            if json.len() > 1 {
                json.push(b',');
            }
            if let Err(e) = serde_json::to_writer(&mut json, &Delivery::from(row)) {
                failed.get_or_insert(e);
            }
        })
        .await?;
        if let Some(e) = failed {
            return Err(StoreError::Other(e.into()));
        }
        json.push(b']');
        json.shrink_to_fit(); // the growth's slack would stay for as long as the body does
        let body = Bytes::from(json);
        let mut list = self.list.lock();
        // Keep the newest revision seen, whichever request finishes first.
        if list.as_ref().is_none_or(|(rev, ..)| *rev <= revision) {
            *list = Some((revision, body.clone(), count));
        }
        Ok((body, count))
    }

    fn cached_list(&self, revision: u64) -> Option<(Bytes, usize)> {
        let list = self.list.lock();
        let (rev, body, count) = list.as_ref()?;
        (*rev == revision).then(|| (body.clone(), *count))
    }

    /// The number of deliveries at `revision`: from the cached list if it is current, else
    /// counted.
    pub async fn count(&self, db: &Db, revision: u64) -> Result<usize, StoreError> {
        if let Some((rev, _, count)) = self.list.lock().as_ref()
            && *rev == revision
        {
            return Ok(*count);
        }
        Ok(deliveries::count(db).await?)
    }

    /// Delivery `id` as JSON at `revision`, or `None` if there is none (not cached: an unknown
    /// id costs the query each time, as it did before the cache).
    pub async fn one(&self, db: &Db, id: i64, revision: u64) -> Result<Option<Bytes>, StoreError> {
        {
            let mut items = self.items.lock();
            if items.revision == revision
                && let Some(body) = items.bodies.get(&id)
            {
                return Ok(Some(body.clone()));
            }
        }
        let Some(delivery) = deliveries::one(db, id).await? else {
            return Ok(None);
        };
        let body = to_json(&Delivery::from(delivery))?;
        let mut items = self.items.lock();
        if items.revision < revision {
            items.revision = revision;
            items.bodies.clear();
        }
        if items.revision == revision {
            items.bodies.insert(id, body.clone());
        }
        Ok(Some(body))
    }
}

fn to_json(value: &impl Serialize) -> Result<Bytes, StoreError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| StoreError::Other(e.into()))
}

/// A cached body as a response: sent in slices of the one shared buffer (each a reference, not a
/// copy), so a connection holds at most a slice or two of it in its write buffer. As one piece,
/// actix-http's HTTP/1.1 writer would copy the whole body into the connection's buffer, and a
/// client that never reads would keep that copy alive.
pub struct Sliced(pub Bytes);

/// Large enough for few wake-ups, small beside the socket's own buffers.
const SLICE: usize = 64 * 1024;

impl actix_web::body::MessageBody for Sliced {
    type Error = std::convert::Infallible;

    fn size(&self) -> actix_web::body::BodySize {
        actix_web::body::BodySize::Sized(self.0.len() as u64)
    }

    /// A body of one slice or less goes out whole with the head, as a plain `Bytes` body would.
    fn try_into_bytes(self) -> Result<Bytes, Self> {
        if self.0.len() <= SLICE {
            Ok(self.0)
        } else {
            Err(self)
        }
    }

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        if self.0.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.0.len().min(SLICE);
        std::task::Poll::Ready(Some(Ok(self.0.split_to(n))))
    }
}
