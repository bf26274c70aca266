//! The data: SQLite or PostgreSQL through sqlx ([`Db`]: one pool per engine, migrations embedded
//! in the binary and applied at start), the deliveries and users in it, the revisions that keep
//! the caches exact (across instances, on PostgreSQL), `--seed`, and `copy-data`. No HTTP here: a failure is a [`StoreError`] (or a `sqlx::Error`) with a
//! [`Failure`] kind, and the API layer (`error.rs`) decides what status it is.

pub mod copy;
pub mod deliveries;
pub mod revision;
pub mod seed;
pub mod users;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, SqlSafeStr as _, SqlitePool};

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

/// The database, connected and migrated.
pub struct Connected {
    pub db: Db,
    pub location: Location,
    /// No migration had been applied before this start: the database is new (`--seed` loads
    /// only new databases).
    pub created: bool,
}

/// The migrations of each engine, embedded in the binary and applied at start (sqlx records each
/// with a checksum: never edit one that shipped; see migrations/README.md). Listed by hand rather
/// than with `sqlx::migrate!()`: the macro needs sqlx's proc macros, which cost a first build a
/// second, host-side build of sqlx and SQLite. A test checks the lists match the folders.
const SQLITE_MIGRATIONS: [(i64, &str, &str); 6] = [
    (
        1,
        "users",
        include_str!("../../migrations/sqlite/0001_users.sql"),
    ),
    (
        2,
        "deliveries",
        include_str!("../../migrations/sqlite/0002_deliveries.sql"),
    ),
    (
        3,
        "seed",
        include_str!("../../migrations/sqlite/0003_seed.sql"),
    ),
    (
        4,
        "users revision",
        include_str!("../../migrations/sqlite/0004_users_revision.sql"),
    ),
    (
        5,
        "deliveries revision",
        include_str!("../../migrations/sqlite/0005_deliveries_revision.sql"),
    ),
    (
        6,
        "deliveries autoincrement",
        include_str!("../../migrations/sqlite/0006_deliveries_autoincrement.sql"),
    ),
];

const POSTGRES_MIGRATIONS: [(i64, &str, &str); 2] = [
    (
        1,
        "schema",
        include_str!("../../migrations/postgres/0001_schema.sql"),
    ),
    (
        2,
        "seed",
        include_str!("../../migrations/postgres/0002_seed.sql"),
    ),
];

pub fn migrator(engine: Engine) -> Migrator {
    let list: &[(i64, &str, &str)] = match engine {
        Engine::Sqlite => &SQLITE_MIGRATIONS,
        Engine::Postgres => &POSTGRES_MIGRATIONS,
    };
    Migrator::with_migrations(
        list.iter()
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

/// Which database, and how long a statement waits for another writer's lock before giving up
/// (then the request is answered 503). Built once from the flags (`--database-url`,
/// `--db-busy-timeout-ms`) by start-up and by the subcommands.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `sqlite://PATH` (or a bare path) or `postgres://…`.
    pub url: String,
    pub busy_timeout: Duration,
}

/// Opens (creating if needed) and migrates the database. Used by `serve` and by `user ...`.
pub async fn connect(settings: &Settings) -> anyhow::Result<Connected> {
    match Engine::of(&settings.url)? {
        Engine::Sqlite => connect_sqlite(settings).await,
        Engine::Postgres => connect_postgres(settings).await,
    }
}

/// An existing database as it is: not created, not migrated, SQLite opened read-only. For
/// `copy-data`'s source, which must not change.
pub async fn open_existing(settings: &Settings) -> anyhow::Result<Connected> {
    let url = &settings.url;
    let (db, location) = match Engine::of(url)? {
        Engine::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("invalid database URL {url:?}"))?
                .read_only(true);
            let path = options.get_filename().to_owned();
            if !path.exists() {
                anyhow::bail!("there is no database at {}", shown_path(&path).display());
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .with_context(|| format!("cannot open {}", shown_path(&path).display()))?;
            let file = DbFile::new(path.clone());
            (Db::Sqlite { pool, file }, Location::File(path))
        }
        Engine::Postgres => {
            let (options, location) = postgres_options(settings)?;
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .with_context(|| format!("cannot connect to the {location}"))?;
            (Db::Postgres(pool), location)
        }
    };
    let migrated = on_either!(&db, |pool| sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM _sqlx_migrations"
    )
    .fetch_one(pool)
    .await)
    .is_ok_and(|applied| applied > 0);
    if !migrated {
        anyhow::bail!("the {location} holds no delivery-api data (it was never migrated)");
    }
    Ok(Connected {
        db,
        location,
        created: false,
    })
}

/// The file a SQLite URL names (it may not exist yet); `None` for PostgreSQL.
pub fn database_path(url: &str) -> anyhow::Result<Option<PathBuf>> {
    if Engine::of(url)? == Engine::Postgres {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("invalid --database-url {url:?}"))?;
    Ok(Some(options.get_filename().to_owned()))
}

async fn connect_sqlite(settings: &Settings) -> anyhow::Result<Connected> {
    let options = SqliteConnectOptions::from_str(&settings.url)
        .with_context(|| format!("invalid --database-url {:?}", settings.url))?
        .create_if_missing(true)
        .foreign_keys(true)
        // WAL lets readers run beside the one writer. synchronous=FULL fsyncs the WAL on every
        // commit, so an acknowledged write survives kill -9 *and* a power cut.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(settings.busy_timeout)
        // A statement that waited out the busy timeout is answered 503 and logged once a minute
        // by the API (error.rs); sqlx's own WARN per slow statement would be one line per request.
        .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
        .statement_cache_capacity(64);

    let path = options.get_filename().to_owned();
    let created = !path.exists();
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

    migrator(Engine::Sqlite)
        .run(&pool)
        .await
        .map_err(|e| explain_open_failure(e, "migrate", &path, &dir))?;
    Ok(Connected {
        db: Db::Sqlite {
            pool,
            file: DbFile::new(path.clone()),
        },
        location: Location::File(path),
        created,
    })
}

/// Pooled connections each instance keeps to PostgreSQL at most (plus one per worker for the
/// revision read, `revision.rs`). Instances share the server's `max_connections` (100 by
/// default): with 2 workers, 18 each leaves room for five instances and the tools.
const PG_MAX_CONNECTIONS: u32 = 16;
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

fn postgres_options(settings: &Settings) -> anyhow::Result<(PgConnectOptions, Location)> {
    let options = PgConnectOptions::from_str(&settings.url)
        .map_err(|e| anyhow::anyhow!("invalid --database-url (a postgres: URL): {e}"))?
        // A statement waiting on a lock gives up like SQLite's busy timeout: 503, not a hang.
        .options([
            (
                "lock_timeout",
                format!("{}ms", settings.busy_timeout.as_millis()),
            ),
            ("application_name", "delivery-api".to_owned()),
        ])
        .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
    let location = Location::Server {
        host: options.get_host().to_owned(),
        port: options.get_port(),
        database: options
            .get_database()
            .unwrap_or(options.get_username())
            .to_owned(),
        user: options.get_username().to_owned(),
    };
    Ok((options, location))
}

async fn connect_postgres(settings: &Settings) -> anyhow::Result<Connected> {
    let (options, location) = postgres_options(settings)?;
    // One connection first, for its error: the pool would retry until its timeout and then say
    // only "pool timed out", hiding "connection refused" or "password authentication failed".
    options
        .connect()
        .await
        .with_context(|| format!("cannot connect to the {location}"))?
        .close()
        .await
        .ok();
    let pool = PgPoolOptions::new()
        .max_connections(PG_MAX_CONNECTIONS)
        .min_connections(1)
        // No round trip before each use (it would double every query's latency). A connection
        // that broke (the server restarted) fails its next query with an I/O error: that request
        // gets 503, sqlx drops the connection on release, and the next ones get new connections.
        .test_before_acquire(false)
        // Also how long a request waits while the server is unreachable (sqlx retries a refused
        // connection until then) before its 503.
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to the {location}"))?;
    // Two instances starting at once: sqlx's migrator holds an advisory lock while it migrates.
    let created = !migrations_table_exists(&pool).await?;
    migrator(Engine::Postgres)
        .run(&pool)
        .await
        .with_context(|| format!("cannot migrate the {location}"))?;
    Ok(Connected {
        db: Db::Postgres(pool),
        location,
        created,
    })
}

async fn migrations_table_exists(pool: &PgPool) -> anyhow::Result<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    Ok(found.is_some())
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

fn classify_sqlite(code: i32) -> Failure {
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
fn classify_sqlstate(code: &str) -> Failure {
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
