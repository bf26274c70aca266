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
//! Cheaper still, when nothing was written: every commit to a WAL database, by any process,
//! rewrites the *WAL-index header* at the start of the `-shm` file before it is acknowledged
//! (two 48-byte copies, with a counter of transactions and the last frame; the format is
//! documented at <https://www.sqlite.org/walformat.html>). Each probe reads those 96 bytes from
//! SQLite's own shared mapping of the file (no lock, no system call: SQLite's own readers read
//! them the same way, copy 0 then copy 1, and take them only when both agree) and remembers them beside the revisions its last query found. While
//! the header is byte for byte the one read *before* that query, no transaction has committed
//! since, and the remembered revisions are the current ones; any other header (a commit, a
//! commit being written, a reset WAL) means the query runs. Not covered: a writer in
//! `locking_mode=EXCLUSIVE`, which keeps its WAL-index in its own memory (and locks every other
//! reader out while it lives; docs/performance.md).
//!
//! PostgreSQL: the database is asked on every authenticated request. That is what keeps several
//! instances exact: a password changed through instance A (or `delivery-api user`) is refused by
//! instance B on its very next request, because B asks the database, not a notification that may
//! still be on its way (LISTEN/NOTIFY would leave that window open). To keep it cheap, each worker
//! has one connection of its own for this query (a pooled one also costs a second round trip:
//! sqlx pings each connection it takes back, in a task of its own, which keeps the connection
//! busy though the request has its answer), and requests that arrive while a read is in flight
//! share the *next* read, one that starts after they arrived: never an older one. However many
//! requests are waiting, a worker has at most one revision read in flight. If that connection
//! fails, the caller falls back to the pool (and its 503 handling); the next read reconnects.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::future::Future;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use rusqlite::{Connection, OpenFlags};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Notify;

use super::{Db, on_either};

pub(super) const READ_BOTH: &str = "SELECT (SELECT revision FROM users_revision), \
                                (SELECT revision FROM deliveries_revision)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revisions {
    pub users: u64,
    pub deliveries: u64,
}

/// One per worker thread (it is neither `Send` nor `Sync`).
pub enum RevisionProbe {
    /// A read-only connection to the SQLite file, read in-thread, and its WAL-index header.
    Sqlite(SqliteProbe),
    /// A connection of this worker's own, its reads shared by the requests waiting at one time.
    Postgres(Rc<PgRead>),
    /// The SQLite file could not be opened: the pool answers.
    None,
}

impl RevisionProbe {
    pub fn open(db: &Db) -> Self {
        match db {
            Db::Sqlite { file, .. } => Self::open_file(file.path()),
            Db::Postgres(pool) => Self::Postgres(pg_read((*pool.connect_options()).clone())),
        }
    }

    fn open_file(db_file: &Path) -> Self {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(db_file, flags)
            .and_then(|c| c.busy_timeout(Duration::ZERO).map(|()| c))
            .inspect_err(|e| tracing::debug!(error = %e, "no in-thread revision probe"))
            .ok();
        conn.map_or(Self::None, |conn| {
            Self::Sqlite(SqliteProbe {
                wal_index: WalIndex::map(&conn),
                conn: RefCell::new(conn),
                last: Cell::new(None),
            })
        })
    }

    /// The current revisions; `None` means "ask the pool instead".
    pub async fn read(&self) -> Option<Revisions> {
        match self {
            Self::Sqlite(probe) => probe.read(),
            Self::Postgres(shared) => shared.get().await,
            Self::None => None,
        }
    }
}

pub struct SqliteProbe {
    conn: RefCell<Connection>,
    /// `None` when the `-shm` file could not be opened (not in WAL mode): every read queries.
    wal_index: Option<WalIndex>,
    /// The WAL-index header read just before the last query, and what that query found.
    last: Cell<Option<(WalIndexHeader, Revisions)>>,
}

impl SqliteProbe {
    fn read(&self) -> Option<Revisions> {
        let header = self.wal_index.as_ref().and_then(WalIndex::header);
        if let (Some(header), Some((seen, revisions))) = (header, self.last.get())
            && header == seen
        {
            return Some(revisions); // no commit since that query began
        }
        let revisions = read_sqlite(&self.conn)?;
        self.last.set(header.map(|h| (h, revisions)));
        Some(revisions)
    }
}

/// Both copies of the WAL-index header, as the `-shm` file holds them.
type WalIndexHeader = [u8; 48];

/// SQLite's own mapping of the start of the `-shm` file (region 0 of the WAL-index), asked of the
/// probe connection's VFS with `xShmMap`, the call SQLite's WAL code makes for it. The header is
/// then read from memory: no system call per request (a `pread` of the file was 3–4% of a
/// `GET /delivery/{id}`'s CPU, docs/performance.md). The mapping is the connection's: it stays
/// valid, at this address, until the connection closes, and the connection lives as long as the
/// probe (`conn` is never replaced).
struct WalIndex(NonNull<u32>);

/// The size of a WAL-index region: SQLite maps the `-shm` file in pieces of this size
/// (`WALINDEX_PGSZ` in its wal.c).
const WAL_INDEX_REGION: c_int = 32 * 1024;

impl WalIndex {
    /// `None` when the connection has no shared WAL-index (not in WAL mode, a `-shm` it cannot
    /// share, a VFS without shared memory): then every read queries.
    fn map(conn: &Connection) -> Option<Self> {
        use rusqlite::ffi;
        let mut file: *mut ffi::sqlite3_file = ptr::null_mut();
        // SAFETY: the handle is this open connection's; FILE_POINTER writes one pointer.
        let found = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&raw mut file).cast(),
            )
        };
        if found != ffi::SQLITE_OK || file.is_null() {
            return None;
        }
        // SAFETY: `file` is the database's open file, owned by the connection; `pMethods` is
        // its VFS's table, with `xShmMap` from version 2 on. bExtend = 0: map what exists,
        // never grow the file.
        let region = unsafe {
            let methods = (*file).pMethods;
            if methods.is_null() || (*methods).iVersion < 2 {
                return None;
            }
            let shm_map = (*methods).xShmMap?;
            let mut region: *mut c_void = ptr::null_mut();
            let mapped = shm_map(file, 0, WAL_INDEX_REGION, 0, &raw mut region);
            if mapped != ffi::SQLITE_OK {
                tracing::debug!(code = mapped, "no WAL-index to read");
                return None;
            }
            region
        };
        NonNull::new(region.cast::<u32>()).map(Self)
    }

    /// The header when its two copies agree and it is initialised; `None` while a commit is
    /// rewriting it: then the query decides.
    fn header(&self) -> Option<WalIndexHeader> {
        const WORDS: usize = 12; // 48 bytes
        let mut copies = [[0u32; WORDS]; 2];
        for (n, copy) in copies.iter_mut().enumerate() {
            if n == 1 {
                // As SQLite's readers do (walIndexTryHdr): copy 0, a barrier, then copy 1. A
                // writer writes copy 1 first, so a header being rewritten never looks agreed.
                fence(Ordering::SeqCst);
            }
            for (i, word) in copy.iter_mut().enumerate() {
                // SAFETY: 96 bytes of a mapped 32 KiB region, u32-aligned (the region is
                // page-aligned); other processes write it, so each word is read as it is now.
                *word = unsafe { self.0.as_ptr().add(n * WORDS + i).read_volatile() };
            }
        }
        if copies[0] != copies[1] {
            return None;
        }
        let mut header = [0u8; 48];
        for (bytes, word) in header.chunks_exact_mut(4).zip(copies[0]) {
            bytes.copy_from_slice(&word.to_ne_bytes());
        }
        let is_init = header[12] == 1; // the `isInit` byte of the documented layout
        is_init.then_some(header)
    }
}

fn read_sqlite(conn: &RefCell<Connection>) -> Option<Revisions> {
    let conn = conn.try_borrow().ok()?;
    let mut stmt = conn.prepare_cached(READ_BOTH).ok()?;
    stmt.query_row([], |row| {
        Ok(Revisions {
            users: row.get::<_, i64>(0)? as u64,
            deliveries: row.get::<_, i64>(1)? as u64,
        })
    })
    .ok()
}

/// How long a revision read may take on the worker's own connection before the requests waiting
/// for it ask the pool instead (which has its own timeouts and 503).
const PG_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A read that the requests waiting at one time share, with one rule: a request only uses a read
/// that *started after it arrived* (an older one could predate the write it must see). At most
/// one read is in flight.
pub struct SharedRead<T, F> {
    read: F,
    /// Reads started so far; a request may use read number `started + 1` (as of its arrival)
    /// or later.
    started: Cell<u64>,
    running: Cell<bool>,
    /// The last finished read: its number and what it found.
    last: Cell<(u64, Option<T>)>,
    finished: Notify,
}

impl<T, F, Fut> SharedRead<T, F>
where
    T: Copy + 'static,
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Option<T>> + 'static,
{
    pub fn new(read: F) -> Self {
        Self {
            read,
            started: Cell::new(0),
            running: Cell::new(false),
            last: Cell::new((0, None)),
            finished: Notify::new(),
        }
    }

    pub async fn get(self: &Rc<Self>) -> Option<T> {
        // A read already in flight started before this request arrived: not good enough.
        let wanted = self.started.get() + 1;
        loop {
            let (number, found) = self.last.get();
            if number >= wanted {
                return found;
            }
            let finished = self.finished.notified();
            if !self.running.get() {
                self.running.set(true);
                let number = self.started.get() + 1;
                self.started.set(number);
                // Its own task: a request that goes away must not cancel the others' read.
                let shared = self.clone();
                actix_rt::spawn(async move {
                    // Whatever ends the read (an answer, or a panic unwinding through it), the
                    // next one can start and the waiting requests wake up.
                    let finish = Finish(shared.clone(), number);
                    let found = (shared.read)().await;
                    shared.last.set((number, found));
                    drop(finish);
                });
            }
            finished.await;
        }
    }
}

/// Marks a [`SharedRead`]'s read as over when dropped; a read that did not finish found nothing.
struct Finish<T: Copy, F>(Rc<SharedRead<T, F>>, u64);

impl<T: Copy, F> Drop for Finish<T, F> {
    fn drop(&mut self) {
        let shared = &self.0;
        if shared.last.get().0 < self.1 {
            shared.last.set((self.1, None)); // the callers ask the pool instead
        }
        shared.running.set(false);
        shared.finished.notify_waiters();
    }
}

/// This worker's own connection for the revision read (`None` after a failure: the next read
/// reconnects).
pub struct PgReader {
    options: PgConnectOptions,
    conn: RefCell<Option<PgConnection>>,
}

impl PgReader {
    async fn query(&self) -> Option<Revisions> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => PgConnection::connect_with(&self.options)
                .await
                .inspect_err(|e| tracing::debug!(error = %e, "revision reader cannot connect"))
                .ok()?,
        };
        let (users, deliveries): (i64, i64) = sqlx::query_as(READ_BOTH)
            .fetch_one(&mut conn)
            .await
            .inspect_err(|e| tracing::debug!(error = %e, "revision read failed"))
            .ok()?;
        self.conn.replace(Some(conn));
        Some(Revisions {
            users: users as u64,
            deliveries: deliveries as u64,
        })
    }
}

type PgRead = SharedRead<Revisions, Box<dyn Fn() -> LocalBoxFuture<'static, Option<Revisions>>>>;

fn pg_read(options: PgConnectOptions) -> Rc<PgRead> {
    let reader = Rc::new(PgReader {
        options,
        conn: RefCell::new(None),
    });
    Rc::new(SharedRead::new(Box::new(move || {
        let reader = reader.clone();
        Box::pin(async move {
            tokio::time::timeout(PG_READ_TIMEOUT, reader.query())
                .await
                .ok()
                .flatten()
        }) as LocalBoxFuture<'static, Option<Revisions>>
    })))
}

/// Through the async pool: PostgreSQL's way, and SQLite's fallback, with the pool's busy
/// timeout and error handling.
pub async fn read_with_pool(db: &Db) -> sqlx::Result<Revisions> {
    let (users, deliveries): (i64, i64) =
        on_either!(timed db, |pool| sqlx::query_as(READ_BOTH).fetch_one(pool).await)?;
    Ok(Revisions {
        users: users as u64,
        deliveries: deliveries as u64,
    })
}

/// The probe if it answers, else the pool.
pub async fn current(probe: Option<&RevisionProbe>, db: &Db) -> sqlx::Result<Revisions> {
    let found = match probe {
        Some(probe) => probe.read().await,
        None => None,
    };
    match found {
        Some(revisions) => Ok(revisions),
        None => read_with_pool(db).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database with the two counters, and a writer connection of "another process".
    fn wal_database(dir: &Path) -> (std::path::PathBuf, Connection) {
        let path = dir.join("probe.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL;
                 CREATE TABLE users_revision (revision INTEGER NOT NULL);
                 CREATE TABLE deliveries_revision (revision INTEGER NOT NULL);
                 INSERT INTO users_revision VALUES (0);
                 INSERT INTO deliveries_revision VALUES (0);",
            )
            .expect("schema");
        (path, writer)
    }

    /// While no transaction commits, the probe answers from the WAL-index header without a query;
    /// the first read after any commit (by any connection) queries, and sees it.
    #[test]
    fn the_wal_index_header_spares_the_query_only_while_nothing_was_committed() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, writer) = wal_database(dir.path());
        let RevisionProbe::Sqlite(probe) = RevisionProbe::open_file(&path) else {
            panic!("a probe for a WAL file");
        };
        assert!(probe.wal_index.is_some(), "the -shm file is read");
        let at = |d: u32| {
            Some(Revisions {
                users: 0,
                deliveries: u64::from(d),
            })
        };
        assert_eq!(probe.read(), at(0), "the first read queries");
        for n in 1..=50 {
            // The probe's connection is taken: a read that needs the query finds nothing.
            let held = probe.conn.borrow_mut();
            assert_eq!(probe.read(), at(n - 1), "no commit: the header answers");
            writer
                .execute(
                    "UPDATE deliveries_revision SET revision = ?1",
                    [i64::from(n)],
                )
                .expect("write");
            assert_eq!(
                probe.read(),
                None,
                "after a commit the header does not answer"
            );
            drop(held);
            assert_eq!(probe.read(), at(n), "the query sees the commit");
        }
    }

    /// A read in flight when a request arrives is not that request's: it gets the next one,
    /// which sees what was written meanwhile. Requests that arrive together share one read.
    #[actix_rt::test]
    async fn a_request_never_uses_a_read_that_started_before_it_arrived() {
        // The "database": a value, and a gate that holds each read until the test opens it.
        let value = Rc::new(Cell::new(1u64));
        let reads = Rc::new(Cell::new(0u32));
        let gate = Rc::new(Notify::new());
        let shared = Rc::new(SharedRead::new({
            let (value, reads, gate) = (value.clone(), reads.clone(), gate.clone());
            move || {
                let (value, reads, gate) = (value.clone(), reads.clone(), gate.clone());
                async move {
                    reads.set(reads.get() + 1);
                    let seen = value.get(); // read at the start, like a snapshot
                    gate.notified().await;
                    Some(seen)
                }
            }
        }));

        let first = actix_rt::spawn({
            let shared = shared.clone();
            async move { shared.get().await }
        });
        while reads.get() < 1 && !first.is_finished() {
            tokio::task::yield_now().await; // the first read has started (and saw 1)
        }
        value.set(2); // a write, acknowledged after that read started
        let (second, third) = (
            actix_rt::spawn({
                let shared = shared.clone();
                async move { shared.get().await }
            }),
            actix_rt::spawn({
                let shared = shared.clone();
                async move { shared.get().await }
            }),
        );
        tokio::task::yield_now().await; // both are waiting now
        gate.notify_one(); // the first read finishes
        assert_eq!(first.await.expect("first"), Some(1));
        // (If they had taken the first read, they are finished now, and fail below.)
        while reads.get() < 2 && !second.is_finished() {
            tokio::task::yield_now().await;
        }
        gate.notify_one(); // the second read, started after they arrived
        assert_eq!(second.await.expect("second"), Some(2), "not the older read");
        assert_eq!(third.await.expect("third"), Some(2));
        assert_eq!(reads.get(), 2, "the two late requests shared one read");
    }
}
