//! The delivery resource: its types and its queries. (What a client may send is decided in
//! `routes/input.rs`.)
//!
//! A write returns only once SQLite has committed it, so a 201/200/204 always means "on disk".
//! Each write is one statement in autocommit mode: SQLite commits when the statement *finishes*,
//! and the commit's failure (a full disk, an I/O error) is the result of its last step. So writes
//! read their `RETURNING` row with `fetch_all`, which steps to the end and returns that error.
//! Never `fetch_one`/`fetch_optional` here: sqlx stops stepping after the first row, the commit
//! happens when the statement is reset, and its error is dropped. That acknowledged writes that
//! were never stored. (An explicit transaction would surface it too, but sqlx then loses track
//! of a transaction that SQLite rolled back by itself after the failed COMMIT, and the
//! connection keeps the write lock: every other writer waits out the busy timeout.)

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    InTransit,
    Delivered,
    Cancelled,
}

impl Status {
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::InTransit,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InTransit => "in_transit",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }
}

/// By hand rather than derived: serde_json reports a derived enum given `null`, `5`, `[]` or `{}`
/// as a *syntax* error ("expected value"), which would be a 400 "malformed JSON" for a body that
/// is valid JSON with a wrong value (422). As a string visitor, every wrong value is a data error.
impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusName;
        impl Visitor<'_> for StatusName {
            type Value = Status;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of \"pending\", \"in_transit\", \"delivered\", \"cancelled\"")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Status, E> {
                Status::from_name(value)
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_str(StatusName)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub reference: String,
    pub recipient: String,
    pub address: String,
    pub status: Status,
    pub created_at: String,
    pub updated_at: String,
}

/// By hand (sqlx's derives need its proc macros, which cost a first build a second, host-side
/// build of sqlx and SQLite). The status is stored as its name; the CHECK constraint in
/// migration 0002 keeps it one of the four.
impl<'r> sqlx::FromRow<'r, SqliteRow> for Delivery {
    fn from_row(row: &'r SqliteRow) -> sqlx::Result<Self> {
        let status: &str = row.try_get("status")?;
        let status = Status::from_name(status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: format!("unknown status {status:?}").into(),
        })?;
        Ok(Self {
            id: row.try_get("id")?,
            reference: row.try_get("reference")?,
            recipient: row.try_get("recipient")?,
            address: row.try_get("address")?,
            status,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// The body of `POST /delivery`; `PUT /delivery/{id}` takes the same fields, status included.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDelivery {
    pub reference: String,
    pub recipient: String,
    pub address: String,
    #[serde(default = "default_status")]
    pub status: Status,
}

fn default_status() -> Status {
    Status::Pending
}

pub async fn all(pool: &SqlitePool) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as(
        "SELECT id, reference, recipient, address, status, created_at, updated_at
         FROM deliveries ORDER BY id",
    )
    .fetch_all(pool)
    .await
}

/// How many deliveries there are.
pub async fn count(pool: &SqlitePool) -> sqlx::Result<usize> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries")
        .fetch_one(pool)
        .await?;
    Ok(usize::try_from(count).unwrap_or_default())
}

/// One page of the list, ordered by id.
pub async fn page(pool: &SqlitePool, limit: u32, offset: u32) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as(
        "SELECT id, reference, recipient, address, status, created_at, updated_at
         FROM deliveries ORDER BY id LIMIT ? OFFSET ?",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

pub async fn one(pool: &SqlitePool, id: i64) -> sqlx::Result<Option<Delivery>> {
    sqlx::query_as(
        "SELECT id, reference, recipient, address, status, created_at, updated_at
         FROM deliveries WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn create(pool: &SqlitePool, new: &NewDelivery) -> Result<Delivery, StoreError> {
    let created: Vec<Delivery> = sqlx::query_as(
        "INSERT INTO deliveries (reference, recipient, address, status) VALUES (?, ?, ?, ?)
         RETURNING id, reference, recipient, address, status, created_at, updated_at",
    )
    .bind(&new.reference)
    .bind(&new.recipient)
    .bind(&new.address)
    .bind(new.status.as_str())
    .fetch_all(pool) // to the last step: the commit (see the module comment)
    .await
    .map_err(|e| duplicate_reference(e, &new.reference))?;
    created
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("INSERT … RETURNING returned no row").into())
}

/// Group commit for [`create`]: concurrent creations are written by one task, as one `INSERT` of
/// many rows, so one commit (one fsync, `synchronous=FULL`) acknowledges a whole batch instead
/// of one row. Each request is still answered only after the commit that stored its row. While a
/// batch is being written the next one gathers: nothing waits on a timer, and a lone request is
/// written at once, as before.
#[derive(Clone)]
pub struct Creator {
    queue: mpsc::Sender<Creation>,
}

struct Creation {
    new: NewDelivery,
    done: oneshot::Sender<Result<Delivery, StoreError>>,
}

/// Rows per statement: 4 parameters each, far below SQLite's 32,766.
const MAX_BATCH: usize = 128;

impl Creator {
    /// Starts the writing task (on the current Tokio runtime); it ends when every handle is dropped.
    pub fn start(pool: SqlitePool) -> Self {
        let (queue, mut pending) = mpsc::channel::<Creation>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
                write_batch(&pool, std::mem::take(&mut batch)).await;
            }
        });
        Self { queue }
    }

    /// Creates a delivery; returns once its row is committed.
    pub async fn create(&self, new: NewDelivery) -> Result<Delivery, StoreError> {
        let (done, outcome) = oneshot::channel();
        let gone = || StoreError::Other(anyhow::anyhow!("the delivery writer has stopped"));
        self.queue
            .send(Creation { new, done })
            .await
            .map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

/// One statement for the batch, committed as it finishes. A reference that already exists (or
/// comes twice in the batch) is skipped by `ON CONFLICT DO NOTHING` and absent from `RETURNING`:
/// that request gets 409, the others their rows. If the statement fails (a full disk, an I/O
/// error), nothing of it was stored, and each creation is tried on its own, so that each gets
/// its own answer.
async fn write_batch(pool: &SqlitePool, batch: Vec<Creation>) {
    tracing::debug!(rows = batch.len(), "creating deliveries, one commit");
    if batch.len() > 1 {
        let values = vec!["(?, ?, ?, ?)"; batch.len()].join(", ");
        let sql = format!(
            "INSERT INTO deliveries (reference, recipient, address, status) VALUES {values}
             ON CONFLICT (reference) DO NOTHING
             RETURNING id, reference, recipient, address, status, created_at, updated_at"
        );
        // Only placeholders vary; every value is bound.
        let mut insert = sqlx::query_as::<_, Delivery>(sqlx::AssertSqlSafe(sql));
        for Creation { new, .. } in &batch {
            insert = insert
                .bind(&new.reference)
                .bind(&new.recipient)
                .bind(&new.address)
                .bind(new.status.as_str());
        }
        // fetch_all: to the last step, the commit (see the module comment).
        if let Ok(rows) = insert.fetch_all(pool).await {
            // Committed. RETURNING's row order is unspecified: match rows by their reference,
            // and check the row is this request's (of two with one reference, the first won).
            let mut rows: HashMap<String, Delivery> =
                rows.into_iter().map(|d| (d.reference.clone(), d)).collect();
            for Creation { new, done } in batch {
                let row = rows
                    .remove(&new.reference)
                    .filter(|row| row.is(&new))
                    .ok_or(StoreError::DuplicateReference(new.reference));
                let _ = done.send(row);
            }
            return;
        }
    }
    for Creation { new, done } in batch {
        let _ = done.send(create(pool, &new).await);
    }
}

impl Delivery {
    /// True when this row holds exactly what `new` asked for.
    fn is(&self, new: &NewDelivery) -> bool {
        (&self.reference, &self.recipient, &self.address, self.status)
            == (&new.reference, &new.recipient, &new.address, new.status)
    }
}

pub async fn replace(
    pool: &SqlitePool,
    id: i64,
    new: &NewDelivery,
) -> Result<Option<Delivery>, StoreError> {
    let replaced: Vec<Delivery> = sqlx::query_as(
        "UPDATE deliveries
         SET reference = ?, recipient = ?, address = ?, status = ?,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?
         RETURNING id, reference, recipient, address, status, created_at, updated_at",
    )
    .bind(&new.reference)
    .bind(&new.recipient)
    .bind(&new.address)
    .bind(new.status.as_str())
    .bind(id)
    .fetch_all(pool) // to the last step: the commit (see the module comment)
    .await
    .map_err(|e| duplicate_reference(e, &new.reference))?;
    Ok(replaced.into_iter().next())
}

/// Returns true when a delivery was deleted.
pub async fn delete(pool: &SqlitePool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM deliveries WHERE id = ?")
        .bind(id)
        .execute(pool) // steps to the end, commit included
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The UNIQUE constraint on `reference`, named as such (the API answers it with 409).
fn duplicate_reference(e: sqlx::Error, reference: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::DuplicateReference(reference.to_owned())
        }
        _ => e.into(),
    }
}
