//! `delivery-api copy-data`: everything in one database, into a new one, either engine to
//! either engine. Users keep their password hashes (nobody needs a new password), deliveries
//! their ids and timestamps, and the id counter its high-water mark, so that an id deleted in the
//! old database is not handed out again by the new one. One transaction on the target: a failed
//! copy leaves it as migrated, with its sample data.

use super::deliveries::Delivery;
use super::{Db, on_either};

pub struct Copied {
    pub users: usize,
    pub deliveries: usize,
}

/// A user as copied: name, password hash, created and updated (RFC 3339 text).
type User = (String, String, String, String);

/// The source as of one moment, even if something still writes to it.
struct Snapshot {
    users: Vec<User>,
    deliveries: Vec<Delivery>,
    /// The highest delivery id ever handed out.
    high_water: i64,
    /// The users' and the deliveries' revisions.
    revisions: (i64, i64),
}

pub async fn copy(from: &Db, to: &Db) -> anyhow::Result<Copied> {
    let snapshot = read(from).await?;
    // The one user-name rule (`users::validate_name`): a name from before it is refused here,
    // named, rather than carried into the new database.
    for (name, ..) in &snapshot.users {
        super::users::validate_name(name).map_err(|e| {
            anyhow::anyhow!(
                "the source's user {name:?} breaks the user-name rule ({e}): remove it there \
                 (delivery-api user remove), add it again under a valid name, then copy"
            )
        })?;
    }
    write(to, &snapshot).await?;
    Ok(Copied {
        users: snapshot.users.len(),
        deliveries: snapshot.deliveries.len(),
    })
}

async fn read(from: &Db) -> anyhow::Result<Snapshot> {
    let sql = from.sql();
    let snapshot = on_either!(from, |pool| {
        let mut tx = pool.begin().await?;
        if let Some(snapshot) = sql.copy_snapshot {
            sqlx::query(snapshot).execute(&mut *tx).await?;
        }
        let users: Vec<User> = sqlx::query_as(sql.copy_users).fetch_all(&mut *tx).await?;
        let deliveries: Vec<Delivery> = sqlx::query_as(sql.deliveries.all)
            .fetch_all(&mut *tx)
            .await?;
        let high_water: Option<i64> = sqlx::query_scalar(sql.copy_high_water)
            .fetch_one(&mut *tx)
            .await?;
        let revisions: (i64, i64) = sqlx::query_as(super::revision::READ_BOTH)
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        let high_water = deliveries
            .iter()
            .map(|d| d.id)
            .fold(high_water.unwrap_or(0), i64::max);
        Snapshot {
            users,
            deliveries,
            high_water,
            revisions,
        }
    });
    Ok(snapshot)
}

async fn write(to: &Db, snapshot: &Snapshot) -> anyhow::Result<()> {
    let sql = to.sql();
    on_either!(to, |pool| {
        let mut tx = pool.begin().await?;
        // The target's sample data (its migrations seed the demo user and twelve deliveries).
        sqlx::query("DELETE FROM deliveries")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users").execute(&mut *tx).await?;
        for (name, hash, created, updated) in &snapshot.users {
            sqlx::query(sql.copy_insert_user)
                .bind(name)
                .bind(hash)
                .bind(created)
                .bind(updated)
                .execute(&mut *tx)
                .await?;
        }
        for d in &snapshot.deliveries {
            sqlx::query(sql.copy_insert_delivery)
                .bind(d.id)
                .bind(&d.reference)
                .bind(&d.recipient)
                .bind(&d.address)
                .bind(d.status.as_str())
                .bind(&d.created_at)
                .bind(&d.updated_at)
                .execute(&mut *tx)
                .await?;
        }
        if snapshot.high_water > 0 {
            sqlx::query(sql.copy_set_high_water)
                .bind(snapshot.high_water)
                .execute(&mut *tx)
                .await?;
        }
        // Past the source's revisions: an ETag a client got from the old database (deliveries-rN)
        // never matches a different list in the new one.
        let (users_revision, deliveries_revision) = snapshot.revisions;
        sqlx::query("UPDATE users_revision SET revision = revision + $1")
            .bind(users_revision + 1)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE deliveries_revision SET revision = revision + $1")
            .bind(deliveries_revision + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(())
}
