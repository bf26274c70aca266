//! The data: SQLite or PostgreSQL through sqlx ([`Db`]: one pool per engine, migrations embedded
//! in the binary and applied at start), the deliveries and users in it, the revisions that keep
//! the caches exact (across instances, on PostgreSQL), `--seed`, and `copy-data`. No HTTP here: a failure is a [`StoreError`] (or a `sqlx::Error`) with a
//! [`Failure`] kind, and the API layer (`error.rs`) decides what status it is.

mod connect;
pub mod copy;
pub mod deliveries;
mod failure;
mod file;
pub mod revision;
pub mod seed;
mod sql;
pub mod users;

pub use connect::{
    Connected, Settings, connect, database_path, discard_new, migrator, open_existing, shown_path,
};
pub use failure::{Failure, classify};
pub use file::DbFile;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::postgres::PgPool;

/// What a store call can fail with, besides the database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A UNIQUE constraint: a delivery with this reference exists.
    #[error("a delivery with reference {0:?} already exists")]
    DuplicateReference(String),
    /// A failure shared by every creation of one batch (full or unavailable), as classified.
    #[error("{1}")]
    Failed(Failure, String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The database: one binary, two engines, chosen by the URL's scheme. Each engine has its native
/// sqlx driver (not `sqlx::Any`), its own migrations and, where SQL differs, its own queries;
/// the rest of the program sees only this type and the functions of this module.
#[derive(Debug, Clone)]
pub enum Db {
    /// `sqlite://…` (or a bare path): one file, in-process, nothing to start.
    Sqlite { pool: SqlitePool, file: DbFile },
    /// `postgres://…` / `postgresql://…`: shared by several instances, on several machines.
    Postgres(PgPool),
}

/// Runs one expression on whichever pool `db` holds: for queries whose SQL is the same on both
/// engines (`$1`, `$2`… are positional parameters in SQLite as well as in PostgreSQL).
///
/// `on_either!(timed db, |pool| …)`: on PostgreSQL the query also has a deadline
/// ([`PG_QUERY_DEADLINE`]): a server that vanished without closing its connections (a power cut,
/// a network partition, a NAT that dropped the connection) would otherwise hold the request, or
/// the delivery writer, until TCP gives up, after about 15 minutes. (SQLite is in-process: its
/// busy timeout is its deadline.)
macro_rules! on_either {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { pool: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
    (timed $db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { pool: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => {
                $crate::store::within_deadline(async { $body }).await
            }
        }
    };
}
pub(crate) use on_either;

/// How long one PostgreSQL query may take, waiting for a connection included, before it is
/// answered 503. Longer than the default lock timeout (5 s), which answers lock waits first.
pub const PG_QUERY_DEADLINE: Duration = Duration::from_secs(10);

pub(crate) async fn within_deadline<T>(
    query: impl std::future::Future<Output = sqlx::Result<T>>,
) -> sqlx::Result<T> {
    tokio::time::timeout(PG_QUERY_DEADLINE, query)
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from PostgreSQL within {PG_QUERY_DEADLINE:?}"),
            )))
        })
}

impl Db {
    pub fn engine(&self) -> Engine {
        match self {
            Self::Sqlite { .. } => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    /// Ok while the database can be trusted to be the one opened at start: for SQLite, one
    /// `stat` that the file at the path is still the same file (see [`DbFile`]).
    pub fn check(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite { file, .. } => file.check(),
            Self::Postgres(_) => Ok(()),
        }
    }

    pub async fn close(&self) {
        on_either!(self, |pool| pool.close().await)
    }

    /// Cheap liveness check for `GET /health`: one query that reads a table.
    pub async fn ping(&self) -> sqlx::Result<()> {
        self.check()?;
        on_either!(timed self, |pool| sqlx::query("SELECT 1 FROM deliveries LIMIT 1")
            .execute(pool)
            .await
            .map(drop))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine a database URL names: `postgres:`/`postgresql:` or `sqlite:` (also a bare path).
    /// Any other scheme is refused: it would be taken for a file name and silently create a
    /// SQLite file called, say, `mysql:` here. A one-letter "scheme" is a Windows drive letter.
    pub fn of(url: &str) -> anyhow::Result<Self> {
        let Some((scheme, _)) = url.split_once(':') else {
            return Ok(Self::Sqlite);
        };
        let is_scheme = scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !is_scheme || scheme.eq_ignore_ascii_case("sqlite") {
            return Ok(Self::Sqlite);
        }
        if scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql") {
            return Ok(Self::Postgres);
        }
        anyhow::bail!(
            "the database URL's scheme is {scheme:?}, which this build does not serve: give a \
             sqlite: URL (sqlite://data/delivery.db) or a postgres: URL \
             (postgres://user@host:5432/deliveries) with --database-url or DATABASE_URL; a file \
             name with a colon needs the sqlite:// prefix"
        )
    }
}

/// Where the data is, as the user should read it: an absolute file path, or a PostgreSQL server
/// and database (never the password).
#[derive(Debug, Clone)]
pub enum Location {
    File(PathBuf),
    Server {
        host: String,
        port: u16,
        database: String,
        user: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", shown_path(path).display()),
            Self::Server {
                host,
                port,
                database,
                user,
            } => write!(
                f,
                "PostgreSQL database {database:?} on {host}:{port} (user {user:?})"
            ),
        }
    }
}

impl Location {
    /// For the ready line: the file's absolute path, or a `postgres://` URL without the password.
    pub fn for_machines(&self) -> String {
        match self {
            Self::File(path) => shown_path(path).display().to_string(),
            Self::Server {
                host,
                port,
                database,
                user,
            } => format!("postgres://{user}@{host}:{port}/{database}"),
        }
    }
}

/// The deliveries revision the migrations leave on a new database, on both engines (SQLite's
/// 0006 bumps it once; PostgreSQL's seed is one statement). `--seed` replaces only a database
/// still at it. (A test checks it on both engines.)
pub const NEW_DATABASE_REVISION: i64 = 1;

#[cfg(test)]
mod tests {
    use super::connect::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
    use super::failure::classify_sqlstate;
    use super::*;

    #[test]
    fn the_engine_comes_from_the_scheme_and_unknown_schemes_are_refused() {
        for url in [
            "postgres://app@db.example:5432/deliveries",
            "postgresql://localhost/app",
            "POSTGRES://localhost/app",
        ] {
            assert_eq!(Engine::of(url).expect(url), Engine::Postgres, "{url}");
        }
        for url in ["mysql://root@localhost/app", "my:db"] {
            let err = Engine::of(url).expect_err(url).to_string();
            let scheme = url.split(':').next().expect("scheme");
            assert!(err.contains(&format!("{scheme:?}")), "{url}: {err}");
        }
        for url in [
            "sqlite://data/delivery.db",
            "SQLITE:data.db",
            "sqlite::memory:",
            "data/delivery.db",
            "C:\\data\\delivery.db",
        ] {
            assert_eq!(Engine::of(url).expect(url), Engine::Sqlite, "{url}");
        }
    }

    #[test]
    fn postgres_failures_map_like_sqlite_ones() {
        assert_eq!(classify_sqlstate("53100"), Failure::Full);
        for code in [
            "08006", "08001", "57P01", "57P03", "55P03", "40001", "25006",
        ] {
            assert_eq!(classify_sqlstate(code), Failure::Unavailable, "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert_eq!(classify_sqlstate(code), Failure::Other, "{code}");
        }
    }

    #[test]
    fn every_file_in_migrations_is_listed_in_order() {
        for (folder, listed) in [
            ("sqlite", &SQLITE_MIGRATIONS[..]),
            ("postgres", &POSTGRES_MIGRATIONS[..]),
        ] {
            let dir = format!("{}/migrations/{folder}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .expect("migrations/")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.ends_with(".sql"))
                .collect();
            files.sort();
            assert_eq!(files.len(), listed.len(), "{folder}: {files:?}");
            for (file, (version, _, _)) in files.iter().zip(listed) {
                assert!(
                    file.starts_with(&format!("{version:04}_")),
                    "{folder}/{file} is not {version}"
                );
            }
        }
    }
}
