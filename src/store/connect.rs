//! Opening a database: the URL's engine, creating and migrating it (migrations embedded in the
//! binary), and naming what went wrong in words a user can act on.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, SqlSafeStr as _};

use super::{Db, DbFile, Engine, Location, on_either};

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
pub(super) const SQLITE_MIGRATIONS: [(i64, &str, &str); 6] = [
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

pub(super) const POSTGRES_MIGRATIONS: [(i64, &str, &str); 2] = [
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

/// Undoes a database this process has just created and could not fill (`--seed`, `copy-data`):
/// a SQLite file is closed and removed with its `-wal` and `-shm`, so that a retry starts from
/// nothing. A PostgreSQL database is the administrator's, created before: it stays as migrated.
pub async fn discard_new(connected: Connected) {
    connected.db.close().await;
    if !connected.created {
        return;
    }
    if let Location::File(path) = &connected.location {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}
