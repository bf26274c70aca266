//! The database behind a server under test: which one it gets, and reading or writing it directly
//! (as another process would), with SQL that reads the same on both engines.

use std::path::Path;

use delivery_api::store::Db;

use super::TestApp;

/// Runs one expression on whichever pool `db` holds (the same SQL on both engines).
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            delivery_api::store::Db::Sqlite { pool: $pool, .. } => $body,
            delivery_api::store::Db::Postgres($pool) => $body,
        }
    };
}

pub(crate) use on_db;

pub async fn scalar(db: &Db, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    on_db!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await)
    .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn execute(db: &Db, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    on_db!(db, |pool| sqlx::query(sql).execute(pool).await.map(drop))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Another connection to `url`'s database, as another process would have (migrated, so usable
/// on a new database too).
pub async fn open_db(url: &str) -> Db {
    let args = delivery_api::store::Settings {
        url: url.to_owned(),
        busy_timeout: std::time::Duration::from_secs(5),
    };
    delivery_api::store::connect(&args)
        .await
        .expect("the database opens")
        .db
}

/// The database for the app whose files are in `dir`: the URL in `dir`/database-url if there is
/// one (see [`use_database`]); else `dir`/test.db on SQLite, or on PostgreSQL a new database in
/// the shared cluster, remembered there, so that a restarted server finds its data.
pub async fn database_url(dir: &Path) -> String {
    let remembered = dir.join("database-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return url;
    }
    if !super::engine::on_postgres() {
        return format!("sqlite://{}", dir.join("test.db").display());
    }
    let url = super::pg::cluster().new_database().await;
    use_database(dir, &url);
    url
}

/// Makes servers started on `dir` use the database at `url` (several instances, one database).
pub fn use_database(dir: &Path, url: &str) {
    std::fs::write(dir.join("database-url"), url).expect("remember the database");
}

impl TestApp {
    pub async fn count_deliveries(&self) -> i64 {
        self.scalar("SELECT count(*) FROM deliveries").await
    }

    /// One number from SQL that reads the same on both engines.
    pub async fn scalar(&self, sql: &str) -> i64 {
        scalar(&self.db, sql).await
    }

    /// Runs SQL that reads the same on both engines (`$1`… parameters: none here).
    pub async fn execute(&self, sql: &str) {
        execute(&self.db, sql).await
    }

    /// Every delivery row, every column, in id order: "the database is unchanged" is equality.
    pub async fn snapshot(&self) -> Vec<(i64, String, String, String, String, String, String)> {
        on_db!(&self.db, |pool| sqlx::query_as(
            "SELECT id, reference, recipient, address, status, \
                    CAST(created_at AS TEXT), CAST(updated_at AS TEXT)
             FROM deliveries ORDER BY id",
        )
        .fetch_all(pool)
        .await)
        .expect("snapshot")
    }

    /// The SQLite pool, for tests of what only SQLite has (its page limit): they call
    /// [`super::sqlite_only`] first.
    pub fn sqlite_pool(&self) -> &sqlx::SqlitePool {
        match &self.db {
            Db::Sqlite { pool, .. } => pool,
            Db::Postgres(_) => panic!("a SQLite-only test on PostgreSQL: call sqlite_only() first"),
        }
    }
}
