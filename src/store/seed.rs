//! Replacing a database's deliveries (and users) in one transaction, all of it or nothing: a new
//! database's sample with `--seed`'s data, and, with `--test-support`, any database's data with
//! its seed again (`POST /reset`).

use anyhow::Context;

use super::deliveries::NewDelivery;
use super::{Db, NEW_DATABASE_REVISION, on_either};

/// The built-in sample's deliveries: the `INSERT INTO deliveries` of each engine's seed
/// migration, run again as it is (so the sample a reset restores is the one a new database gets,
/// timestamps included, with nothing to keep in step).
const SQLITE_SAMPLE: &str = include_str!("../../migrations/sqlite/0003_seed.sql");
const POSTGRES_SAMPLE: &str = include_str!("../../migrations/postgres/0002_seed.sql");

/// What a database is reset to.
#[derive(Clone, Copy)]
pub enum Sample<'a> {
    /// The migrations' deliveries; the users stay as they are (they are `delivery-api user`'s:
    /// a reset must not undo a password changed on purpose).
    BuiltIn,
    /// A seed file's deliveries, and its users (name, argon2 hash) if it has any.
    Given {
        deliveries: &'a [NewDelivery],
        users: &'a [(String, String)],
    },
}

/// What a reset left: how many deliveries, and how many users it wrote (0: users untouched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub deliveries: u64,
    pub users: u64,
}

/// Replaces the deliveries (and, if `users` is not empty, the users: name and argon2 hash) of a
/// database still as the migrations left it. Else another instance seeded it (or wrote to it)
/// first, and its data is not replaced. On PostgreSQL the row lock makes a second seeder wait for
/// the first, then see the revision it left.
pub async fn replace_sample(
    db: &Db,
    deliveries: &[NewDelivery],
    users: &[(String, String)],
) -> anyhow::Result<()> {
    replace(db, Sample::Given { deliveries, users }, true).await?;
    Ok(())
}

/// Puts `sample` back, whatever the database holds now: deliveries emptied and ids from 1 again.
/// Both revisions it changes move on in the same transaction (the triggers do it, and one more
/// explicit bump makes sure), so every cached list, item and login of every instance on this
/// database is stale from the commit on, and a client's ETag from before never matches again.
pub async fn reset(db: &Db, sample: Sample<'_>) -> anyhow::Result<Restored> {
    replace(db, sample, false).await
}

async fn replace(db: &Db, sample: Sample<'_>, only_if_new: bool) -> anyhow::Result<Restored> {
    let sql = db.sql();
    let built_in = built_in_sample(db)?;
    let restored = on_either!(db, |pool| {
        let mut tx = pool.begin().await?;
        // A reset starts by writing: on SQLite a transaction that read first could not take the
        // write lock while requests of the test before are still writing (SQLITE_BUSY at once,
        // where a first write waits out the busy timeout).
        if only_if_new {
            let revision: i64 = sqlx::query_scalar(sql.seed_revision)
                .fetch_one(&mut *tx)
                .await?;
            if revision != NEW_DATABASE_REVISION {
                anyhow::bail!(
                    "the new database was changed since this start migrated it (another \
                     instance seeded it first?): not seeding over it"
                );
            }
        }
        for statement in sql.seed_reset {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        let mut restored = Restored {
            deliveries: 0,
            users: 0,
        };
        let (deliveries, users) = match sample {
            Sample::BuiltIn => (None, &[][..]),
            Sample::Given { deliveries, users } => (Some(deliveries), users),
        };
        match deliveries {
            None => {
                let done = sqlx::query(built_in).execute(&mut *tx).await?;
                restored.deliveries = done.rows_affected();
            }
            Some(deliveries) => {
                for new in deliveries {
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
                    .with_context(|| format!("reference {:?}", new.reference))?;
                    restored.deliveries += 1;
                }
            }
        }
        if !users.is_empty() {
            sqlx::query("DELETE FROM users").execute(&mut *tx).await?;
            for (name, hash) in users {
                sqlx::query("INSERT INTO users (name, password_hash) VALUES ($1, $2)")
                    .bind(name)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("user {name:?}"))?;
                restored.users += 1;
            }
        }
        if !only_if_new {
            // The triggers have bumped them already (an empty table's DELETE fires none on
            // SQLite, so it is said here once more): the list and logins cached at the old
            // revisions are never served again.
            sqlx::query("UPDATE deliveries_revision SET revision = revision + 1")
                .execute(&mut *tx)
                .await?;
            if restored.users > 0 {
                sqlx::query("UPDATE users_revision SET revision = revision + 1")
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        restored
    });
    Ok(restored)
}

/// The seed migration's `INSERT INTO deliveries … ;` statement, for this engine.
fn built_in_sample(db: &Db) -> anyhow::Result<&'static str> {
    let migration = match db.engine() {
        super::Engine::Sqlite => SQLITE_SAMPLE,
        super::Engine::Postgres => POSTGRES_SAMPLE,
    };
    statement_inserting_deliveries(migration)
        .context("the seed migration has no INSERT INTO deliveries statement")
}

fn statement_inserting_deliveries(migration: &'static str) -> Option<&'static str> {
    let start = migration.find("INSERT INTO deliveries")?;
    let rest = &migration[start..];
    // The statement ends at the `;` that ends a line (the addresses hold none).
    let end = rest.find(";\n").or_else(|| rest.rfind(';'))?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_has_the_sample_statement_with_twelve_rows() {
        for migration in [SQLITE_SAMPLE, POSTGRES_SAMPLE] {
            let statement = statement_inserting_deliveries(migration).expect("the statement");
            assert_eq!(statement.matches("('DLV-2026-").count(), 12, "{statement}");
            assert!(!statement.contains(';'));
        }
    }
}
