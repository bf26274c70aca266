//! The database's change counters (`users_revision`, `deliveries_revision`, bumped by triggers on
//! every write, by any process), read on every authenticated request.
//!
//! They decide whether a cached login and the cached list are still exact, so reading them must be
//! cheap. SQLite: sqlx runs each query on a connection thread (two thread hops, ~50 µs of CPU
//! here), so each worker keeps one read-only rusqlite connection and reads both counters
//! in-thread (a few µs). WAL readers never wait for writers; if the read fails anyway (busy, file
//! gone), the caller falls back to the async sqlx pool, which has the busy timeout and the 503
//! handling.
//!
//! PostgreSQL: one round trip through the pool on every authenticated request. That is what
//! keeps several instances exact: a password changed through instance A (or `delivery-api user`)
//! is refused by instance B on its very next request, because B asks the database, not a
//! notification that may still be on its way. (LISTEN/NOTIFY would save the round trip but
//! leave a window between A's commit and B's receiving it; README "More than one instance" has
//! the measurement.)

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Db, on_either};

const READ_BOTH: &str = "SELECT (SELECT revision FROM users_revision), \
                                (SELECT revision FROM deliveries_revision)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revisions {
    pub users: u64,
    pub deliveries: u64,
}

/// One per worker thread (it is not `Sync`); `None` inside when the file cannot be opened, and
/// on PostgreSQL.
pub struct RevisionProbe {
    conn: Option<RefCell<Connection>>,
}

impl RevisionProbe {
    pub fn open(db: &Db) -> Self {
        match db.sqlite_file() {
            Some(file) => Self::open_file(file),
            None => Self { conn: None },
        }
    }

    fn open_file(db_file: &Path) -> Self {
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

/// Through the async pool: PostgreSQL's way, and SQLite's fallback, with the pool's busy
/// timeout and error handling.
pub async fn read_with_pool(db: &Db) -> sqlx::Result<Revisions> {
    let (users, deliveries): (i64, i64) =
        on_either!(db, |pool| sqlx::query_as(READ_BOTH).fetch_one(pool).await)?;
    Ok(Revisions {
        users: users as u64,
        deliveries: deliveries as u64,
    })
}

/// The probe if it answers, else the pool.
pub async fn current(probe: Option<&RevisionProbe>, db: &Db) -> sqlx::Result<Revisions> {
    match probe.and_then(RevisionProbe::read) {
        Some(revisions) => Ok(revisions),
        None => read_with_pool(db).await,
    }
}
