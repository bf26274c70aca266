//! Starting under a test harness (Playwright's `webServer`, a CI script, your own integration
//! tests): a machine-readable line when the server is ready, a throwaway database, your own data.
//!
//! - **Ready line**: once serving, one JSON object on stdout (logs go to stderr), and optionally
//!   to `--ready-file` (written whole, then renamed into place, so a poller never reads half of
//!   it; removed at exit). With `--bind 127.0.0.1:0` it is how a harness learns the port.
//! - **`--ephemeral`**: the database, and the dev certificates unless `--cert` is given, live in
//!   a new temporary directory, removed at exit (not after `kill -9`: nothing can do that).
//! - **`--seed FILE.json`**: a new database gets these deliveries (and users) instead of the
//!   built-in sample. Each delivery passes the same checks as a `POST /delivery` body.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::routes::input;
use crate::store::{self, Db, on_either, users};

/// A temporary directory for one run, removed when dropped.
#[derive(Debug)]
pub struct Ephemeral {
    dir: PathBuf,
}

impl Ephemeral {
    pub fn create() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("delivery-api-{}-{nanos:09}", std::process::id()));
        std::fs::create_dir(&dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.join("delivery.db").display())
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove the ephemeral directory");
        }
    }
}

/// `--seed`: `{"deliveries": [{reference, recipient, address, status?}], "users": [{name, password}]}`.
/// Without `users`, the demo user stays; with them, they replace it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    deliveries: Vec<Box<RawValue>>,
    #[serde(default)]
    users: Vec<SeedUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedUser {
    name: String,
    password: SecretString,
}

/// Replaces the sample data of a new database with the file's, in one transaction.
pub async fn seed(db: &Db, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the seed file {}", file.display()))?;
    let seed: SeedFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a seed file", file.display()))?;
    let mut deliveries = Vec::with_capacity(seed.deliveries.len());
    for (i, raw) in seed.deliveries.iter().enumerate() {
        let new = input::delivery_from(raw)
            .map_err(|e| anyhow::anyhow!("{}: deliveries[{i}]: {e}", file.display()))?;
        deliveries.push(new);
    }
    let mut users = Vec::with_capacity(seed.users.len());
    for user in &seed.users {
        let name = users::nfc(user.name.trim());
        if name.is_empty() || name.contains(':') {
            anyhow::bail!(
                "{}: user name {:?} is empty or has a colon",
                file.display(),
                user.name
            );
        }
        let hash = users::hash_password(&user.password)?;
        users.push((name, hash));
    }

    // Still as the migrations left it: else another instance started with --seed on the same new
    // database (or wrote to it) first, and its data is not replaced. On PostgreSQL the row lock
    // makes a second seeder wait for the first, then see the revision it left.
    let revision_now = match db {
        Db::Sqlite { .. } => "SELECT revision FROM deliveries_revision",
        Db::Postgres(_) => "SELECT revision FROM deliveries_revision FOR UPDATE",
    };
    // A new database: no id was ever handed out, so the seed's ids start at 1.
    let reset: &[&str] = match db {
        Db::Sqlite { .. } => &[
            "DELETE FROM deliveries",
            "DELETE FROM sqlite_sequence WHERE name = 'deliveries'",
        ],
        Db::Postgres(_) => &["TRUNCATE deliveries RESTART IDENTITY"],
    };
    on_either!(db, |pool| {
        let mut tx = pool.begin().await?;
        let revision: i64 = sqlx::query_scalar(revision_now).fetch_one(&mut *tx).await?;
        if revision != store::NEW_DATABASE_REVISION {
            anyhow::bail!(
                "--seed {}: the new database was changed since this start migrated it (another \
                 instance seeded it first?): not seeding over it",
                file.display()
            );
        }
        for statement in reset {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        for new in &deliveries {
            sqlx::query(
                "INSERT INTO deliveries (reference, recipient, address, status) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&new.reference)
            .bind(&new.recipient)
            .bind(&new.address)
            .bind(new.status.as_str())
            .execute(&mut *tx)
            .await
            .with_context(|| format!("{}: reference {:?}", file.display(), new.reference))?;
        }
        if !users.is_empty() {
            sqlx::query("DELETE FROM users").execute(&mut *tx).await?;
            for (name, hash) in &users {
                sqlx::query("INSERT INTO users (name, password_hash) VALUES ($1, $2)")
                    .bind(name)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("{}: user {name:?}", file.display()))?;
            }
        }
        tx.commit().await?;
    });
    tracing::info!(
        deliveries = deliveries.len(),
        users = users.len(),
        "seeded from {}",
        file.display()
    );
    Ok(())
}

/// Writes `line` to `path` whole: into a sibling temporary file, then renamed over `path`.
pub fn write_ready_file(path: &Path, line: &str) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, format!("{line}\n"))
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write the ready file {}", path.display()))
}
