//! Serialized read responses (the HTTP side of the store's reads), kept while the data has not changed: the `GET /delivery/all` body,
//! and the bodies of recently read single deliveries (`GET /delivery/{id}`, at most
//! [`MAX_ITEMS`]).
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
        if let Some((rev, body, count)) = self.list.lock().as_ref()
            && *rev == revision
        {
            return Ok((body.clone(), *count));
        }
        let rows = deliveries::all(db).await?;
        let count = rows.len();
        let rows: Vec<Delivery> = rows.into_iter().map(Delivery::from).collect();
        let body = to_json(&rows)?;
        let mut list = self.list.lock();
        // Keep the newest revision seen, whichever request finishes first.
        if list.as_ref().is_none_or(|(rev, ..)| *rev <= revision) {
            *list = Some((revision, body.clone(), count));
        }
        Ok((body, count))
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
