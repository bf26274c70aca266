//! The data: SQLite through sqlx (one pool, WAL, migrations embedded in the binary and applied at
//! start), the deliveries and users in it, the revisions that keep the caches exact, and the
//! cached list. No HTTP here: a failure is a [`StoreError`] (or a `sqlx::Error`) with a
//! [`Failure`] kind, and the API layer (`error.rs`) decides what status it is.

pub mod deliveries;
pub mod read_cache;
pub mod revision;
pub mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, SqlSafeStr as _, SqlitePool};

use crate::config::DatabaseArgs;

/// What a store call can fail with, besides the database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A UNIQUE constraint: a delivery with this reference exists.
    #[error("a delivery with reference {0:?} already exists")]
    DuplicateReference(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The migrations, embedded in the binary and applied at start (sqlx records each with a
/// checksum: never edit one that shipped; see migrations/README.md). Listed by hand rather than
/// with `sqlx::migrate!()`: the macro needs sqlx's proc macros, which cost a first build a second,
/// host-side build of sqlx and SQLite. A test checks the list matches the folder.
const MIGRATIONS: [(i64, &str, &str); 6] = [
    (1, "users", include_str!("../../migrations/0001_users.sql")),
    (
        2,
        "deliveries",
        include_str!("../../migrations/0002_deliveries.sql"),
    ),
    (3, "seed", include_str!("../../migrations/0003_seed.sql")),
    (
        4,
        "users revision",
        include_str!("../../migrations/0004_users_revision.sql"),
    ),
    (
        5,
        "deliveries revision",
        include_str!("../../migrations/0005_deliveries_revision.sql"),
    ),
    (
        6,
        "deliveries autoincrement",
        include_str!("../../migrations/0006_deliveries_autoincrement.sql"),
    ),
];

pub fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Opens (creating if needed) and migrates the database. Used by `serve` and by `user ...`.
pub async fn connect(args: &DatabaseArgs) -> anyhow::Result<SqlitePool> {
    Ok(connect_file(args).await?.0)
}

/// The file a database URL names (it may not exist yet).
pub fn database_path(url: &str) -> anyhow::Result<PathBuf> {
    refuse_other_engines(url)?;
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("invalid --database-url {url:?}"))?;
    Ok(options.get_filename().to_owned())
}

/// Like [`connect`], also returning the database file's path.
pub async fn connect_file(args: &DatabaseArgs) -> anyhow::Result<(SqlitePool, PathBuf)> {
    refuse_other_engines(&args.database_url)?;
    let options = SqliteConnectOptions::from_str(&args.database_url)
        .with_context(|| format!("invalid --database-url {:?}", args.database_url))?
        .create_if_missing(true)
        .foreign_keys(true)
        // WAL lets readers run beside the one writer. synchronous=FULL fsyncs the WAL on every
        // commit, so an acknowledged write survives kill -9 *and* a power cut.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_millis(args.db_busy_timeout_ms))
        // A statement that waited out the busy timeout is answered 503 and logged once a minute
        // by the API (error.rs); sqlx's own WARN per slow statement would be one line per request.
        .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
        .statement_cache_capacity(64);

    let path = options.get_filename().to_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| cannot_create_dir(&dir, e))?;

    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        // No ping before each use: SQLite is in-process, and the ping doubles every query's cost.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| explain_open_failure(e, "open", &path, &dir))?;

    migrator()
        .run(&pool)
        .await
        .map_err(|e| explain_open_failure(e, "migrate", &path, &dir))?;
    Ok((pool, path))
}

/// `path` as the user should read it: absolute, symbolic links resolved once it exists.
pub fn shown_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_owned())
}

/// The database directory could not be created: say which one, and if part of it is a file, which.
fn cannot_create_dir(dir: &Path, e: std::io::Error) -> anyhow::Error {
    let shown = shown_path(dir);
    let file_in_the_way = shown
        .ancestors()
        .find(|a| a.symlink_metadata().is_ok())
        .filter(|a| !a.is_dir());
    match file_in_the_way {
        Some(file) => anyhow::anyhow!(
            "cannot create the database directory {}: {} is a file, not a directory",
            shown.display(),
            file.display()
        ),
        None => anyhow::Error::new(e).context(format!(
            "cannot create the database directory {}",
            shown.display()
        )),
    }
}

/// SQLite says only "unable to open database file" (or "attempt to write a readonly database")
/// when it may not create the file, or its -wal and -shm files, in a directory it cannot write.
/// If that is why, say so, naming the directory.
fn explain_open_failure(
    e: impl Into<anyhow::Error>,
    what: &str,
    path: &Path,
    dir: &Path,
) -> anyhow::Error {
    let failed = format!("cannot {what} the database {}", shown_path(path).display());
    match not_writable(dir) {
        Some(why) => e.into().context(format!(
            "{failed}: its directory {} is not writable ({why}); the database file and its -wal \
             and -shm files are created there: fix the directory's permissions or give a \
             --database-url in a directory this user can write",
            shown_path(dir).display()
        )),
        None => e.into().context(failed),
    }
}

/// Whether this process can create a file in `dir` (a probe file, removed at once): ownership,
/// mode bits, ACLs, a read-only file system and root's privileges all taken into account.
fn not_writable(dir: &Path) -> Option<std::io::Error> {
    let probe = dir.join(format!(".delivery-api-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(e),
    }
}

/// A URL for another engine (`postgres://…`, common in a sqlx user's environment) would be taken
/// for a file name and silently create a SQLite file called `postgres:` here: refuse it instead.
/// A one-letter "scheme" is a Windows drive letter, not an engine.
fn refuse_other_engines(url: &str) -> anyhow::Result<()> {
    let Some((scheme, _)) = url.split_once(':') else {
        return Ok(());
    };
    let is_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if is_scheme && !scheme.eq_ignore_ascii_case("sqlite") {
        anyhow::bail!(
            "the database URL's scheme is {scheme:?}, which this build does not serve: it \
             stores its data in SQLite. Give a sqlite: URL (sqlite://data/delivery.db) with \
             --database-url or DATABASE_URL; a file name with a colon needs the sqlite:// prefix"
        );
    }
    Ok(())
}

/// What a failed database call means for the client, decided from SQLite's result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The disk (or the database's page limit) is full: nothing more can be stored until space
    /// is freed. Reads still work.
    Full,
    /// Busy, locked, read-only, an I/O error, the file gone, the pool exhausted: retry later.
    Unavailable,
    /// Anything else is a bug.
    Other,
}

/// Classifies an error by SQLite's primary result code (extended codes keep it in the low byte).
pub fn classify(e: &sqlx::Error) -> Failure {
    use rusqlite::ffi;
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Failure::Unavailable
        }
        sqlx::Error::Database(db) => {
            let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
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
        _ => Failure::Other,
    }
}

/// The database file as opened at start-up, to notice when it is deleted or replaced underneath
/// the running server: open connections would otherwise keep reading and writing the unlinked
/// file, and acknowledged writes would vanish at the next start.
#[derive(Debug, Clone)]
pub struct DbFile {
    path: PathBuf,
    /// (device, inode) at start-up; `None` for in-memory databases or non-Unix systems.
    identity: Option<(u64, u64)>,
}

impl DbFile {
    pub fn new(path: PathBuf) -> Self {
        let identity = identity(&path);
        Self { path, identity }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Ok while the file at the path is still the one that was opened (one `stat`, ~1 µs).
    pub fn check(&self) -> Result<(), sqlx::Error> {
        let Some(expected) = self.identity else {
            return Ok(());
        };
        if identity(&self.path) == Some(expected) {
            return Ok(());
        }
        let why = if self.path.exists() {
            "was replaced by another file: restart the service to open it"
        } else {
            "is missing: restore it (the service recovers when the same file is back)"
        };
        // An I/O error: `classify` calls it unavailable (503, and recovery when the file is back).
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the database file {} {why}", self.path.display()),
        )))
    }
}

#[cfg(unix)]
fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_: &std::path::Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_other_engines_are_refused_and_sqlite_paths_are_not() {
        for url in [
            "postgres://app@db.example:5432/deliveries",
            "postgresql://localhost/app",
            "mysql://root@localhost/app",
            "my:db",
        ] {
            let err = refuse_other_engines(url).expect_err(url).to_string();
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
            assert!(refuse_other_engines(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn every_file_in_migrations_is_listed_in_order() {
        let mut files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .expect("migrations/")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.ends_with(".sql"))
                .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (version, _, _)) in files.iter().zip(MIGRATIONS) {
            assert!(
                file.starts_with(&format!("{version:04}_")),
                "{file} is not {version}"
            );
        }
    }
}
