//! Group commit for `POST /delivery`: concurrent creations are written by one writer, many rows
//! per commit, so one commit (one fsync: SQLite's `synchronous=FULL`, PostgreSQL's WAL flush)
//! acknowledges a whole batch instead of one row. Each request is still answered only after the
//! commit that stored its row. While a batch is being written the next one gathers: nothing waits
//! on a timer, and a lone request is written at once.
//!
//! The writer differs by engine:
//! - SQLite: a thread of its own, holding one pooled connection. Its SQLite handle is taken out
//!   of sqlx's connection thread (`lock_handle`) and driven directly, so a creation crosses two
//!   threads (the request's worker, this writer) instead of four, and the connection keeps its
//!   page cache and prepared statement between commits. (Each hand-off is a wake-up and a context
//!   switch: they were the largest item of a POST's profile, see docs/performance.md.)
//! - PostgreSQL: a task on the runtime, one multi-row `INSERT` per batch through the pool (the
//!   round trip to the server, not a thread hand-off, is what a batch costs there).
//!
//! Either way: a reference that exists already, or twice in one batch, is that request's 409
//! (the first one wins); a full or unavailable database answers the whole batch at once (507 or
//! 503), and nothing of that batch is stored.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use super::{Delivery, NewDelivery, Status, create};
use crate::store::{Db, Failure, StoreError, classify};

/// The handle requests create deliveries through; cheap to clone.
#[derive(Clone)]
pub struct Creator {
    queue: mpsc::Sender<Creation>,
}

struct Creation {
    new: NewDelivery,
    done: oneshot::Sender<Result<Delivery, StoreError>>,
}

/// Rows per commit at most. For PostgreSQL's one statement: 4 parameters each, far below its
/// 65,535.
const MAX_BATCH: usize = 128;

impl Creator {
    /// Starts the writer (on SQLite a thread, on PostgreSQL a task on the current Tokio runtime);
    /// it ends when every handle is dropped.
    pub fn start(db: Db) -> Self {
        let (queue, pending) = mpsc::channel::<Creation>(4 * MAX_BATCH);
        match db {
            Db::Sqlite { pool, .. } => {
                let runtime = tokio::runtime::Handle::current();
                std::thread::Builder::new()
                    .name("delivery-writer".into())
                    .spawn(move || sqlite::run(&pool, pending, &runtime))
                    .expect("a thread for the delivery writer"); // only fails out of memory
            }
            Db::Postgres(pool) => {
                tokio::spawn(postgres::run(pool, pending));
            }
        }
        Self { queue }
    }

    /// Creates a delivery; returns once its row is committed.
    pub async fn create(&self, new: NewDelivery) -> Result<Delivery, StoreError> {
        let (done, outcome) = oneshot::channel();
        let gone = || StoreError::Other(anyhow::anyhow!("the delivery writer has stopped"));
        self.queue
            .send(Creation { new, done })
            .await
            .map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

/// Answers every creation of a batch with one failure (full or unavailable, as classified).
fn fail_all(batch: &mut Vec<Creation>, failure: Failure, why: &str) {
    for Creation { done, .. } in batch.drain(..) {
        let _ = done.send(Err(StoreError::Failed(failure, why.to_owned())));
    }
}

mod sqlite {
    use rusqlite::{Connection, OptionalExtension as _, ffi};
    use sqlx::SqlitePool;
    use tokio::runtime::Handle;
    use tokio::sync::mpsc;

    use super::{Creation, Delivery, Failure, MAX_BATCH, Status, StoreError, fail_all};

    const INSERT: &str = "INSERT INTO deliveries (reference, recipient, address, status) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (reference) DO NOTHING \
         RETURNING id, reference, recipient, address, status, created_at, updated_at";

    /// The writer thread: takes a connection from the pool (so every per-connection setting of
    /// `connect.rs` applies: busy timeout, `synchronous=FULL`, foreign keys), keeps it while
    /// batches succeed, and lets it go back after a batch failed as a whole (a test, or an
    /// operator, may change a pooled connection's settings in between).
    pub(super) fn run(pool: &SqlitePool, mut pending: mpsc::Receiver<Creation>, runtime: &Handle) {
        let _in_runtime = runtime.enter(); // a PoolConnection returns itself with a spawned task
        let mut batch = Vec::with_capacity(MAX_BATCH);
        'connect: while gather(&mut pending, &mut batch) {
            let mut pooled = match runtime.block_on(pool.acquire()) {
                Ok(pooled) => pooled,
                Err(e) => {
                    fail_all(&mut batch, crate::store::classify(&e), &e.to_string());
                    continue;
                }
            };
            let mut locked = match runtime.block_on(pooled.lock_handle()) {
                Ok(locked) => locked,
                Err(e) => {
                    fail_all(&mut batch, crate::store::classify(&e), &e.to_string());
                    continue;
                }
            };
            // SAFETY: `locked` keeps sqlx's connection thread off this handle until it drops,
            // after `conn` (locals drop in reverse order); `conn` does not close the handle.
            let conn = match unsafe { Connection::from_handle(locked.as_raw_handle().as_ptr()) } {
                Ok(conn) => conn,
                Err(e) => {
                    fail_all(&mut batch, classify(&e), &e.to_string());
                    continue;
                }
            };
            // Whoever closes the pool waits for every connection to come back: this one too.
            let mut closing = std::pin::pin!(pool.close_event());
            loop {
                if let Err(e) = write(&conn, &mut batch) {
                    fail_all(&mut batch, classify(&e), &e.to_string());
                    continue 'connect; // the connection goes back to the pool
                }
                match runtime.block_on(next_or_closing(&mut pending, closing.as_mut())) {
                    Some(Some(first)) => take_waiting(first, &mut pending, &mut batch),
                    Some(None) => return, // every Creator is gone
                    // Let the connection go; the next creations find the pool closed (503).
                    None => continue 'connect,
                }
            }
        }
    }

    /// The next creation, or `None` once the pool is being closed.
    async fn next_or_closing(
        pending: &mut mpsc::Receiver<Creation>,
        closing: std::pin::Pin<&mut sqlx::pool::CloseEvent>,
    ) -> Option<Option<Creation>> {
        tokio::select! {
            biased;
            () = closing => None,
            next = pending.recv() => Some(next),
        }
    }

    /// Waits for one creation, then takes every other one already waiting (up to a batch).
    /// False once every `Creator` is gone.
    fn gather(pending: &mut mpsc::Receiver<Creation>, batch: &mut Vec<Creation>) -> bool {
        let Some(first) = pending.blocking_recv() else {
            return false;
        };
        take_waiting(first, pending, batch);
        true
    }

    /// `first`, and every other creation already waiting (up to a batch).
    fn take_waiting(
        first: Creation,
        pending: &mut mpsc::Receiver<Creation>,
        batch: &mut Vec<Creation>,
    ) {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
    }

    /// One transaction for the batch, each creation its own statement: a duplicate reference is
    /// that creation's 409, any other error of one row (a constraint) that row's 500, and the
    /// others go on. Answers every creation once the COMMIT has returned (the fsync done). An
    /// error that is not one row's (the lock not had within the busy timeout, a full disk, an
    /// I/O error, a failed COMMIT) rolls the whole batch back and is returned, unanswered.
    pub(super) fn write(conn: &Connection, batch: &mut Vec<Creation>) -> rusqlite::Result<()> {
        tracing::debug!(rows = batch.len(), "creating deliveries, one commit");
        // IMMEDIATE: the write lock now (waiting up to the busy timeout), not at the first insert.
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let written = insert_each(conn, batch).and_then(|outcomes| {
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(outcomes)
        });
        let outcomes = match written {
            Ok(outcomes) => outcomes,
            Err(e) => {
                if !conn.is_autocommit() {
                    // SQLite rolls some failures back by itself; the others, here.
                    let _ = conn.execute_batch("ROLLBACK");
                }
                return Err(e);
            }
        };
        for (Creation { done, .. }, outcome) in batch.drain(..).zip(outcomes) {
            let _ = done.send(outcome);
        }
        Ok(())
    }

    fn insert_each(
        conn: &Connection,
        batch: &[Creation],
    ) -> rusqlite::Result<Vec<Result<Delivery, StoreError>>> {
        let mut insert = conn.prepare_cached(INSERT)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for Creation { new, .. } in batch {
            let row = insert
                .query_row(
                    (
                        &new.reference,
                        &new.recipient,
                        &new.address,
                        new.status.as_str(),
                    ),
                    delivery,
                )
                .optional();
            outcomes.push(match row {
                Ok(Some(row)) => Ok(row),
                Ok(None) => Err(StoreError::DuplicateReference(new.reference.clone())),
                Err(e) if classify(&e) == Failure::Other => {
                    Err(StoreError::Other(anyhow::Error::new(e)))
                }
                Err(e) => return Err(e), // the whole batch's
            });
        }
        Ok(outcomes)
    }

    fn delivery(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
        let status: String = row.get(4)?;
        let status = Status::from_name(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("unknown status {status:?}").into(),
            )
        })?;
        Ok(Delivery {
            id: row.get(0)?,
            reference: row.get(1)?,
            recipient: row.get(2)?,
            address: row.get(3)?,
            status,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        })
    }

    /// As `store::classify` does for sqlx's errors: by SQLite's primary result code.
    pub(super) fn classify(e: &rusqlite::Error) -> Failure {
        match e {
            rusqlite::Error::SqliteFailure(ffi::Error { extended_code, .. }, _) => {
                crate::store::failure::classify_sqlite(*extended_code)
            }
            _ => Failure::Other,
        }
    }
}

mod postgres {
    use sqlx::PgPool;

    use super::*;

    pub(super) async fn run(pool: PgPool, mut pending: mpsc::Receiver<Creation>) {
        let db = Db::Postgres(pool);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
            write_batch(&db, std::mem::take(&mut batch)).await;
        }
    }

    /// One statement for the batch, committed as it finishes. A reference that already exists
    /// (or comes twice in the batch) is skipped by `ON CONFLICT DO NOTHING` and absent from
    /// `RETURNING`: that request gets 409, the others their rows. If the statement fails
    /// because the database is full or unavailable (down, locked, an I/O error), every creation
    /// in the batch gets that same answer (507 or 503) at once: trying 128 rows one by one
    /// against a database that is down would keep the last one waiting 128 timeouts, and after
    /// an I/O error the batch may have been committed, where a retry would call the client's
    /// own row a duplicate (409). Any other failure (a bug, a constraint one row breaks) is
    /// tried row by row, so each gets its own answer.
    async fn write_batch(db: &Db, mut batch: Vec<Creation>) {
        tracing::debug!(rows = batch.len(), "creating deliveries, one commit");
        if batch.len() > 1 {
            let values = (0..batch.len())
                .map(|i| {
                    let p = 4 * i;
                    format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4)
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO deliveries (reference, recipient, address, status) VALUES {values}
                 ON CONFLICT (reference) DO NOTHING
                 RETURNING {}",
                db.sql().deliveries.columns
            );
            let Db::Postgres(pool) = db else {
                unreachable!("the PostgreSQL writer is given a PostgreSQL pool")
            };
            // Only placeholders vary; every value is bound.
            let mut insert = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for Creation { new, .. } in &batch {
                insert = insert
                    .bind(&new.reference)
                    .bind(&new.recipient)
                    .bind(&new.address)
                    .bind(new.status.as_str());
            }
            let inserted: sqlx::Result<Vec<Delivery>> =
                crate::store::within_deadline(insert.fetch_all(pool)).await;
            match inserted {
                Ok(rows) => {
                    // Committed. RETURNING's row order is unspecified: match rows by their
                    // reference, and check the row is this request's (of two with one
                    // reference, the first won).
                    let mut rows: HashMap<String, Delivery> =
                        rows.into_iter().map(|d| (d.reference.clone(), d)).collect();
                    for Creation { new, done } in batch {
                        let row = rows
                            .remove(&new.reference)
                            .filter(|row| row.is(&new))
                            .ok_or(StoreError::DuplicateReference(new.reference));
                        let _ = done.send(row);
                    }
                    return;
                }
                Err(e) => match classify(&e) {
                    Failure::Other => {} // below: row by row
                    failure => return fail_all(&mut batch, failure, &e.to_string()),
                },
            }
        }
        for Creation { new, done } in batch {
            let _ = done.send(create(db, &new).await);
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::store::connect::SQLITE_MIGRATIONS;

    /// A migrated database file, opened as the writer opens it (WAL, `synchronous=FULL`).
    fn database(dir: &std::path::Path) -> (std::path::PathBuf, Connection) {
        let path = dir.join("creator.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .expect("pragmas");
        for (_, _, sql) in SQLITE_MIGRATIONS {
            conn.execute_batch(sql).expect("migration");
        }
        (path, conn)
    }

    fn creation(
        reference: &str,
        recipient: &str,
    ) -> (Creation, oneshot::Receiver<Result<Delivery, StoreError>>) {
        let (done, answer) = oneshot::channel();
        let new = NewDelivery {
            reference: reference.to_owned(),
            recipient: recipient.to_owned(),
            address: "1 Test Road".to_owned(),
            status: Status::Pending,
        };
        (Creation { new, done }, answer)
    }

    fn stored(conn: &Connection, like: &str) -> Vec<String> {
        let mut query = conn
            .prepare("SELECT reference FROM deliveries WHERE reference LIKE ?1 ORDER BY id")
            .expect("query");
        query
            .query_map([like], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// One commit for the batch, and an answer for each creation of its own: its row, 409 for
    /// a reference that exists or came earlier in the batch, and an error for the one row the
    /// database refuses (here a CHECK constraint the API would have caught first), while the
    /// rows around it are stored.
    #[test]
    fn each_creation_of_a_batch_gets_its_own_answer() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, conn) = database(dir.path());
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        for (reference, recipient) in [
            ("B-1", "Ana"),
            ("B-2", "   "),          // CHECK (length(trim(recipient)) > 0)
            ("B-1", "Bea"),          // the first B-1 wins
            ("DLV-2026-0001", "Cy"), // seeded by the migrations
            ("B-3", "Dan"),
        ] {
            let (c, answer) = creation(reference, recipient);
            batch.push(c);
            answers.push(answer);
        }
        sqlite::write(&conn, &mut batch).expect("the batch is committed");
        assert!(batch.is_empty(), "every creation answered");
        let answers: Vec<_> = answers
            .into_iter()
            .map(|mut a| a.try_recv().expect("answered"))
            .collect();
        let row = |i: usize| answers[i].as_ref().expect("a row");
        assert_eq!(
            (row(0).reference.as_str(), row(0).recipient.as_str()),
            ("B-1", "Ana")
        );
        assert!(
            matches!(answers[1], Err(StoreError::Other(_))),
            "{:?}",
            answers[1]
        );
        assert!(matches!(&answers[2], Err(StoreError::DuplicateReference(r)) if r == "B-1"));
        assert!(
            matches!(&answers[3], Err(StoreError::DuplicateReference(r)) if r == "DLV-2026-0001")
        );
        assert_eq!(row(4).reference, "B-3");
        assert!(row(4).id > row(0).id);
        assert_eq!(stored(&conn, "B-%"), ["B-1", "B-3"]);
    }

    /// A batch that cannot commit (here: another connection holds the write lock past the busy
    /// timeout) stores nothing, answers nobody itself, and is handed back whole for one shared
    /// answer (503); the connection is usable for the next batch.
    #[test]
    fn a_batch_that_cannot_commit_stores_nothing_and_is_handed_back_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, conn) = database(dir.path());
        conn.busy_timeout(std::time::Duration::from_millis(50))
            .expect("busy timeout");
        let locker = Connection::open(&path).expect("open");
        locker
            .execute_batch("BEGIN IMMEDIATE")
            .expect("the write lock");

        let (first, mut first_answer) = creation("L-1", "Ana");
        let (second, _) = creation("L-2", "Bea");
        let mut batch = vec![first, second];
        let e = sqlite::write(&conn, &mut batch).expect_err("the lock is taken");
        assert_eq!(sqlite::classify(&e), Failure::Unavailable, "{e}");
        assert_eq!(batch.len(), 2, "handed back, unanswered");
        assert!(first_answer.try_recv().is_err(), "not answered by write");
        fail_all(&mut batch, Failure::Unavailable, &e.to_string());
        assert!(matches!(
            first_answer.try_recv(),
            Ok(Err(StoreError::Failed(Failure::Unavailable, _)))
        ));

        locker.execute_batch("ROLLBACK").expect("release");
        assert!(conn.is_autocommit(), "no transaction left open");
        assert_eq!(stored(&conn, "L-%"), Vec::<String>::new());
        let (again, _) = creation("L-1", "Ana");
        let mut batch = vec![again];
        sqlite::write(&conn, &mut batch).expect("written once the lock is free");
        assert_eq!(stored(&conn, "L-%"), ["L-1"]);
    }
}
