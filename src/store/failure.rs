//! What a failed database call means, the same on both engines: full, unavailable, or a bug.

/// What a failed database call means for the client, the same on both engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The disk (or the database's page limit) is full: nothing more can be stored until space
    /// is freed. Reads still work.
    Full,
    /// Busy, locked, read-only, an I/O error, the file or the server gone, the pool exhausted:
    /// retry later.
    Unavailable,
    /// Anything else is a bug.
    Other,
}

/// Classifies an error by SQLite's primary result code (extended codes keep it in the low byte)
/// or by PostgreSQL's SQLSTATE.
pub fn classify(e: &sqlx::Error) -> Failure {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => Failure::Unavailable,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                return classify_sqlstate(pg.code());
            }
            classify_sqlite(db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0))
        }
        _ => Failure::Other,
    }
}

pub(super) fn classify_sqlite(code: i32) -> Failure {
    use rusqlite::ffi;
    match code & 0xff {
        ffi::SQLITE_FULL => Failure::Full,
        ffi::SQLITE_BUSY
        | ffi::SQLITE_LOCKED
        | ffi::SQLITE_READONLY
        | ffi::SQLITE_IOERR
        | ffi::SQLITE_CANTOPEN => Failure::Unavailable,
        _ => Failure::Other,
    }
}

/// PostgreSQL's SQLSTATE (appendix A of its manual): class 08 connection exceptions, 57P0x
/// (the server shutting down or starting), 53xxx insufficient resources, lock timeouts,
/// serialization failures and deadlocks, a read-only transaction (a standby).
pub(super) fn classify_sqlstate(code: &str) -> Failure {
    match code {
        "53100" => Failure::Full, // disk_full
        // lock timeout, serialization failure, deadlock, read-only, statement timeout, an I/O
        // error on the server, a password or database changed under a running instance
        "55P03" | "40001" | "40P01" | "25006" | "57014" | "58030" | "28000" | "28P01" | "3D000" => {
            Failure::Unavailable
        }
        _ if code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") => {
            Failure::Unavailable
        }
        _ => Failure::Other,
    }
}
