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

type UserRow = (String, String, String, String);
type DeliveryRow = (i64, String, String, String, String, String, String);

pub async fn copy(from: &Db, to: &Db) -> anyhow::Result<Copied> {
    // One snapshot of the source: users, deliveries, the id counter and the revisions as of one
    // moment, even if something still writes to it.
    let (users, deliveries, high_water, revisions) = on_either!(from, |pool| {
        let mut tx = pool.begin().await?;
        if let Db::Postgres(_) = from {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let users: Vec<UserRow> = sqlx::query_as(users_sql(from)).fetch_all(&mut *tx).await?;
        let deliveries: Vec<Delivery> = sqlx::query_as(super::deliveries::sql(from).all)
            .fetch_all(&mut *tx)
            .await?;
        let high_water: Option<i64> = sqlx::query_scalar(high_water_sql(from))
            .fetch_one(&mut *tx)
            .await?;
        let revisions: (i64, i64) = sqlx::query_as(super::revision::READ_BOTH)
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        (users, deliveries, high_water.unwrap_or(0), revisions)
    });
    let deliveries: Vec<DeliveryRow> = deliveries
        .into_iter()
        .map(|d| {
            let status = d.status.as_str().to_owned();
            (
                d.id,
                d.reference,
                d.recipient,
                d.address,
                status,
                d.created_at,
                d.updated_at,
            )
        })
        .collect();
    let high_water = deliveries.iter().map(|d| d.0).fold(high_water, i64::max);

    let (insert_user, insert_delivery, set_high_water) = match to {
        Db::Sqlite { .. } => (
            "INSERT INTO users (name, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4)",
            "INSERT INTO deliveries (id, reference, recipient, address, status, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            "UPDATE sqlite_sequence SET seq = $1 WHERE name = 'deliveries'",
        ),
        Db::Postgres(_) => (
            "INSERT INTO users (name, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3::timestamptz, $4::timestamptz)",
            "INSERT INTO deliveries (id, reference, recipient, address, status, created_at, \
             updated_at) OVERRIDING SYSTEM VALUE \
             VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz)",
            "SELECT setval(pg_get_serial_sequence('deliveries', 'id'), $1)",
        ),
    };
    on_either!(to, |pool| {
        let mut tx = pool.begin().await?;
        // The target's sample data (its migrations seed the demo user and twelve deliveries).
        sqlx::query("DELETE FROM deliveries")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users").execute(&mut *tx).await?;
        for (name, hash, created, updated) in &users {
            sqlx::query(insert_user)
                .bind(name)
                .bind(hash)
                .bind(created)
                .bind(updated)
                .execute(&mut *tx)
                .await?;
        }
        for (id, reference, recipient, address, status, created, updated) in &deliveries {
            sqlx::query(insert_delivery)
                .bind(id)
                .bind(reference)
                .bind(recipient)
                .bind(address)
                .bind(status)
                .bind(created)
                .bind(updated)
                .execute(&mut *tx)
                .await?;
        }
        if high_water > 0 {
            sqlx::query(set_high_water)
                .bind(high_water)
                .execute(&mut *tx)
                .await?;
        }
        // Past the source's revisions: an ETag a client got from the old database (deliveries-rN)
        // never matches a different list in the new one.
        sqlx::query("UPDATE users_revision SET revision = revision + $1")
            .bind(revisions.0 + 1)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE deliveries_revision SET revision = revision + $1")
            .bind(revisions.1 + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(Copied {
        users: users.len(),
        deliveries: deliveries.len(),
    })
}

/// Users with their timestamps as RFC 3339 text, on either engine.
fn users_sql(db: &Db) -> &'static str {
    match db {
        Db::Sqlite { .. } => {
            "SELECT name, password_hash, created_at, updated_at FROM users ORDER BY id"
        }
        Db::Postgres(_) => {
            "SELECT name, password_hash, \
                    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') \
             FROM users ORDER BY id"
        }
    }
}

/// The highest delivery id ever handed out (deleted ones included); NULL if none.
fn high_water_sql(db: &Db) -> &'static str {
    match db {
        Db::Sqlite { .. } => "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'deliveries')",
        Db::Postgres(_) => {
            "SELECT pg_sequence_last_value(pg_get_serial_sequence('deliveries', 'id')::regclass)"
        }
    }
}
