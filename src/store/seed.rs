//! Replacing a new database's sample data (`--seed`), in one transaction: all of it or nothing.

use anyhow::Context;

use super::deliveries::NewDelivery;
use super::{Db, NEW_DATABASE_REVISION, on_either};

/// Replaces the deliveries (and, if `users` is not empty, the users: name and argon2 hash) of a
/// database still as the migrations left it. Else another instance seeded it (or wrote to it)
/// first, and its data is not replaced. On PostgreSQL the row lock makes a second seeder wait for
/// the first, then see the revision it left.
pub async fn replace_sample(
    db: &Db,
    deliveries: &[NewDelivery],
    users: &[(String, String)],
) -> anyhow::Result<()> {
    let sql = db.sql();
    on_either!(db, |pool| {
        let mut tx = pool.begin().await?;
        let revision: i64 = sqlx::query_scalar(sql.seed_revision)
            .fetch_one(&mut *tx)
            .await?;
        if revision != NEW_DATABASE_REVISION {
            anyhow::bail!(
                "the new database was changed since this start migrated it (another instance \
                 seeded it first?): not seeding over it"
            );
        }
        for statement in sql.seed_reset {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
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
            }
        }
        tx.commit().await?;
    });
    Ok(())
}
