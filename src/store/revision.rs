//! The database's change counters (`users_revision`, `deliveries_revision`, bumped by triggers on
//! every write, by any process), read on every authenticated request.
//!
//! They decide whether a cached login and the cached list are still exact, so reading them must be
//! cheap: sqlx runs each SQLite query on a connection thread (two thread hops, ~50 µs of CPU here),
//! so each worker keeps one read-only rusqlite connection and reads both counters in-thread (a few
//! µs). WAL readers never wait for writers; if the read fails anyway (busy, file gone), the caller
//! falls back to the async sqlx pool, which has the busy timeout and the 503 handling.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sqlx::SqlitePool;

const READ_BOTH: &str = "SELECT (SELECT revision FROM users_revision), \
                                (SELECT revision FROM deliveries_revision)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revisions {
    pub users: u64,
    pub deliveries: u64,
}

/// One per worker thread (it is not `Sync`); `None` inside when the file cannot be opened.
pub struct RevisionProbe {
    conn: Option<RefCell<Connection>>,
}

impl RevisionProbe {
    pub fn open(db_file: &Path) -> Self {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(db_file, flags)
            .and_then(|c| c.busy_timeout(Duration::ZERO).map(|()| c))
            .inspect_err(|e| tracing::debug!(error = %e, "no in-thread revision probe"))
            .ok();
        Self {
            conn: conn.map(RefCell::new),
        }
    }

    /// The current revisions, read synchronously; `None` means "ask the pool instead".
    pub fn read(&self) -> Option<Revisions> {
        let conn = self.conn.as_ref()?.try_borrow().ok()?;
        let mut stmt = conn.prepare_cached(READ_BOTH).ok()?;
        stmt.query_row([], |row| {
            Ok(Revisions {
                users: row.get::<_, i64>(0)? as u64,
                deliveries: row.get::<_, i64>(1)? as u64,
            })
        })
        .ok()
    }
}

/// Through the async pool: the fallback, with the pool's busy timeout and error handling.
pub async fn read_with_pool(pool: &SqlitePool) -> sqlx::Result<Revisions> {
    let (users, deliveries): (i64, i64) = sqlx::query_as(READ_BOTH).fetch_one(pool).await?;
    Ok(Revisions {
        users: users as u64,
        deliveries: deliveries as u64,
    })
}

/// The probe if it answers, else the pool.
pub async fn current(probe: Option<&RevisionProbe>, pool: &SqlitePool) -> sqlx::Result<Revisions> {
    match probe.and_then(RevisionProbe::read) {
        Some(revisions) => Ok(revisions),
        None => read_with_pool(pool).await,
    }
}
