//! The serialized `GET /delivery/all` body, kept while the data has not changed.
//!
//! Correctness rests on the database, not on timing: every request reads `deliveries_revision`
//! (bumped by a trigger on any write, by any process; see `revision.rs`) and the body is reused
//! only when it was built at that same revision. So the list is never older than the last acknowledged write,
//! including writes by another process. The revision is also the list's ETag.

use parking_lot::Mutex;

use bytes::Bytes;
use sqlx::SqlitePool;

use super::StoreError;
use super::deliveries;

#[derive(Default)]
pub struct ListCache {
    current: Mutex<Option<(u64, Bytes)>>,
}

/// The list as JSON bytes, and the revision it reflects (at least).
pub struct List {
    pub revision: u64,
    pub body: Bytes,
}

impl ListCache {
    /// The body for `revision`: the cached one if it was built at that revision, otherwise read
    /// and serialized again. Rows are read after the revision, so they are at least that new.
    pub async fn get(&self, pool: &SqlitePool, revision: u64) -> Result<List, StoreError> {
        if let Some((rev, body)) = self.current.lock().as_ref()
            && *rev == revision
        {
            return Ok(List {
                revision,
                body: body.clone(),
            });
        }
        let rows = deliveries::all(pool).await?;
        let body = Bytes::from(serde_json::to_vec(&rows).map_err(|e| StoreError::Other(e.into()))?);
        let mut current = self.current.lock();
        // Keep the newest revision seen, whichever request finishes first.
        if current.as_ref().is_none_or(|(rev, _)| *rev <= revision) {
            *current = Some((revision, body.clone()));
        }
        Ok(List { revision, body })
    }
}
