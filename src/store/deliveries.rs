//! Deliveries as the database holds them: the row, the values a new one is made of, and the
//! queries. (The wire format and what a client may send: `routes/delivery/`.)
//!
//! A write returns only once the database has committed it, so a 201/200/204 always means "on
//! disk". PostgreSQL commits each autocommit statement before it answers, so the rest of this
//! comment is SQLite's story. Each write is one statement in autocommit mode: SQLite commits when the statement *finishes*,
//! and the commit's failure (a full disk, an I/O error) is the result of its last step. So writes
//! read their `RETURNING` row with `fetch_all`, which steps to the end and returns that error.
//! Never `fetch_one`/`fetch_optional` here: sqlx stops stepping after the first row, the commit
//! happens when the statement is reset, and its error is dropped. That acknowledged writes that
//! were never stored. (An explicit transaction would surface it too, but sqlx then loses track
//! of a transaction that SQLite rolled back by itself after the failed COMMIT, and the
//! connection keeps the write lock: every other writer waits out the busy timeout.)

use std::collections::HashMap;

use sqlx::{ColumnIndex, Decode, Row, Type};
use tokio::sync::{mpsc, oneshot};

use super::{Db, Failure, StoreError, on_either};

/// Stored as its name (`as_str`); the migrations' CHECK constraint keeps it one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One row of `deliveries`.
#[derive(Debug, Clone)]
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
/// build of sqlx and SQLite), once for both engines' rows. The status is stored as its name; the
/// CHECK constraint in the migrations keeps it one of the four. Timestamps arrive as RFC 3339
/// text on both engines (PostgreSQL's `timestamptz` is formatted by the query, see `sql.rs`).
impl<'r, R> sqlx::FromRow<'r, R> for Delivery
where
    R: Row,
    &'r str: ColumnIndex<R> + Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> sqlx::Result<Self> {
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

/// What a new delivery (or a replacement) is made of, already checked (`routes/delivery/input.rs`).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub reference: String,
    pub recipient: String,
    pub address: String,
    pub status: Status,
}

/// Every delivery in id order, handed to `each` as it is read, so that the rows are never all in
/// memory at once (a list of tens of thousands of large rows is hundreds of MB as values).
/// Returns how many there were.
pub async fn for_each(db: &Db, mut each: impl FnMut(Delivery)) -> sqlx::Result<usize> {
    use futures_util::TryStreamExt as _;
    let sql = db.sql().deliveries.all;
    on_either!(timed db, |pool| {
        let mut rows = sqlx::query_as::<_, Delivery>(sql).fetch(pool);
        let mut count = 0;
        while let Some(row) = rows.try_next().await? {
            each(row);
            count += 1;
        }
        Ok::<_, sqlx::Error>(count)
    })
}

/// How many deliveries there are.
pub async fn count(db: &Db) -> sqlx::Result<usize> {
    let count: i64 = on_either!(timed db, |pool| sqlx::query_scalar(
        "SELECT count(*) FROM deliveries"
    )
    .fetch_one(pool)
    .await)?;
    Ok(usize::try_from(count).unwrap_or_default())
}

/// What `GET /delivery/all` narrows the list to, and its order.
#[derive(Debug, Clone, Copy)]
pub struct Filter<'a> {
    /// Any of these statuses; every status when empty.
    pub statuses: &'a [Status],
    /// A substring of `reference`, `recipient` or `address`; ASCII letters in either case.
    pub text: Option<&'a str>,
    pub order: Order,
}

/// The orders the list can be read in; ties go by id, the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Id,
    IdDesc,
    CreatedAt,
    CreatedAtDesc,
    UpdatedAt,
    UpdatedAtDesc,
}

impl Order {
    /// Shared by both engines. Qualified: on PostgreSQL a bare `created_at` would be the
    /// formatted text of the select list, not the column.
    fn sql(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::IdDesc => "id DESC",
            Self::CreatedAt => "deliveries.created_at, id",
            Self::CreatedAtDesc => "deliveries.created_at DESC, id DESC",
            Self::UpdatedAt => "deliveries.updated_at, id",
            Self::UpdatedAtDesc => "deliveries.updated_at DESC, id DESC",
        }
    }
}

impl Filter<'_> {
    /// ` WHERE …` with `$1…` for the statuses, then the text; and the next free placeholder.
    fn where_clause(&self, db: &Db) -> (String, usize) {
        let mut conditions = Vec::new();
        let mut n = 0;
        if !self.statuses.is_empty() {
            let placeholders: Vec<String> = self
                .statuses
                .iter()
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            conditions.push(format!("status IN ({})", placeholders.join(", ")));
        }
        if self.text.is_some() {
            n += 1;
            conditions.push(db.sql().deliveries.contains.replace("$Q", &format!("${n}")));
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        (clause, n + 1)
    }

    /// The text as the query compares it: ASCII letters lowered (the column's are, in SQL).
    fn needle(&self) -> Option<String> {
        self.text.map(str::to_ascii_lowercase)
    }
}

/// Up to `limit` deliveries (all when `None`) matching `filter`, in its order, after skipping
/// `offset` of them.
pub async fn filtered(
    db: &Db,
    filter: &Filter<'_>,
    limit: Option<u32>,
    offset: u32,
) -> sqlx::Result<Vec<Delivery>> {
    let (clause, n) = filter.where_clause(db);
    // Only placeholders, the fixed ORDER BY texts and the engine's match expression vary.
    let sql = format!(
        "SELECT {} FROM deliveries{clause} ORDER BY {} LIMIT ${n} OFFSET ${}",
        db.sql().deliveries.columns,
        filter.order.sql(),
        n + 1
    );
    let needle = filter.needle();
    let limit = limit.map_or(i64::MAX, i64::from);
    on_either!(timed db, |pool| {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for status in filter.statuses {
            query = query.bind(status.as_str());
        }
        if let Some(needle) = &needle {
            query = query.bind(needle.as_str());
        }
        query.bind(limit).bind(i64::from(offset)).fetch_all(pool).await
    })
}

/// How many deliveries match `filter`.
pub async fn count_matching(db: &Db, filter: &Filter<'_>) -> sqlx::Result<usize> {
    let (clause, _) = filter.where_clause(db);
    let sql = format!("SELECT count(*) FROM deliveries{clause}");
    let needle = filter.needle();
    let count: i64 = on_either!(timed db, |pool| {
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for status in filter.statuses {
            query = query.bind(status.as_str());
        }
        if let Some(needle) = &needle {
            query = query.bind(needle.as_str());
        }
        query.fetch_one(pool).await
    })?;
    Ok(usize::try_from(count).unwrap_or_default())
}

pub async fn one(db: &Db, id: i64) -> sqlx::Result<Option<Delivery>> {
    let sql = db.sql().deliveries.one;
    on_either!(timed db, |pool| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(pool)
        .await)
}

pub async fn create(db: &Db, new: &NewDelivery) -> Result<Delivery, StoreError> {
    let sql = db.sql().deliveries.insert;
    let created: Vec<Delivery> = on_either!(timed db, |pool| sqlx::query_as(sql)
        .bind(&new.reference)
        .bind(&new.recipient)
        .bind(&new.address)
        .bind(new.status.as_str())
        .fetch_all(pool) // to the last step: the commit (see the module comment)
        .await)
    .map_err(|e| duplicate_reference(e, &new.reference))?;
    created
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("INSERT … RETURNING returned no row").into())
}

/// Group commit for [`create`]: concurrent creations are written by one task, as one `INSERT` of
/// many rows, so one commit (one fsync: SQLite's `synchronous=FULL`, PostgreSQL's WAL flush)
/// acknowledges a whole batch instead of one row. Each request is still answered only after the commit that stored its row. While a
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

/// Rows per statement: 4 parameters each, far below SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_BATCH: usize = 128;

impl Creator {
    /// Starts the writing task (on the current Tokio runtime); it ends when every handle is dropped.
    pub fn start(db: Db) -> Self {
        let (queue, mut pending) = mpsc::channel::<Creation>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            let mut writer = Writer::default();
            while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
                write_batch(&db, &mut writer, std::mem::take(&mut batch)).await;
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
/// that request gets 409, the others their rows. If the statement fails because the database is
/// full or unavailable (down, locked, an I/O error), every creation in the batch gets that same
/// answer (507 or 503) at once: trying 128 rows one by one against a database that is down would
/// keep the last one waiting 128 timeouts, and after an I/O error on PostgreSQL the batch may have
/// been committed, where a retry would call the client's own row a duplicate (409). Any other
/// failure (a bug, a constraint one row breaks) is tried row by row, so each gets its own answer.
async fn write_batch(db: &Db, writer: &mut Writer, batch: Vec<Creation>) {
    tracing::debug!(rows = batch.len(), "creating deliveries, one commit");
    if batch.len() > 1 {
        let values = (0..batch.len())
            .map(|i| {
                let p = 4 * i;
                format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO deliveries (reference, recipient, address, status) VALUES {values}
             ON CONFLICT (reference) DO NOTHING
             RETURNING {}",
            db.sql().deliveries.columns
        );
        // Only placeholders vary; every value is bound.
        macro_rules! insert {
            () => {{
                let mut insert = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for Creation { new, .. } in &batch {
                    insert = insert
                        .bind(&new.reference)
                        .bind(&new.recipient)
                        .bind(&new.address)
                        .bind(new.status.as_str());
                }
                insert
            }};
        }
        // fetch_all: to the last step, the commit (see the module comment).
        let inserted: sqlx::Result<Vec<Delivery>> = match db {
            Db::Sqlite { pool, .. } => match writer.connection(pool).await {
                Ok(conn) => {
                    let inserted = insert!().fetch_all(&mut **conn).await;
                    if inserted.is_err() {
                        writer.0 = None; // a connection that failed is not kept
                    }
                    inserted
                }
                Err(e) => Err(e),
            },
            Db::Postgres(pool) => super::within_deadline(insert!().fetch_all(pool)).await,
        };
        let rows = match inserted {
            Ok(rows) => Some(rows),
            Err(e) => match super::classify(&e) {
                Failure::Other => None, // below: row by row
                failure => {
                    let why = e.to_string();
                    for Creation { done, .. } in batch {
                        let _ = done.send(Err(StoreError::Failed(failure, why.clone())));
                    }
                    return;
                }
            },
        };
        if let Some(rows) = rows {
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
        let _ = done.send(create(db, &new).await);
    }
}

/// SQLite: the batches' own connection, kept between batches. A commit through another
/// connection makes SQLite drop a connection's whole page cache, so taking any pooled connection
/// for each batch re-read the table's and index's pages every time (`pread`: 6% of a POST's CPU
/// in bench/profile.sh); one connection that does every batch keeps them, and its prepared
/// statements, between commits. Taken from the pool at the first batch; let go after a failure.
#[derive(Default)]
struct Writer(Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>);

impl Writer {
    async fn connection(
        &mut self,
        pool: &sqlx::SqlitePool,
    ) -> sqlx::Result<&mut sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        if self.0.is_none() {
            self.0 = Some(pool.acquire().await?);
        }
        self.0.as_mut().ok_or_else(|| sqlx::Error::PoolClosed) // just set: not reached
    }
}

impl Delivery {
    /// True when this row holds exactly what `new` asked for.
    fn is(&self, new: &NewDelivery) -> bool {
        (&self.reference, &self.recipient, &self.address, self.status)
            == (&new.reference, &new.recipient, &new.address, new.status)
    }
}

pub async fn replace(db: &Db, id: i64, new: &NewDelivery) -> Result<Option<Delivery>, StoreError> {
    let sql = db.sql().deliveries.replace;
    let replaced: Vec<Delivery> = on_either!(timed db, |pool| sqlx::query_as(sql)
        .bind(&new.reference)
        .bind(&new.recipient)
        .bind(&new.address)
        .bind(new.status.as_str())
        .bind(id)
        .fetch_all(pool) // to the last step: the commit (see the module comment)
        .await)
    .map_err(|e| duplicate_reference(e, &new.reference))?;
    Ok(replaced.into_iter().next())
}

/// The fields a PATCH changes (`None`: kept), already checked (`routes/delivery/input.rs`).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub reference: Option<String>,
    pub recipient: Option<String>,
    pub address: Option<String>,
    pub status: Option<Status>,
}

/// Changes some fields of delivery `id`; `None` when there is no such delivery.
pub async fn update(db: &Db, id: i64, changes: &Changes) -> Result<Option<Delivery>, StoreError> {
    let sql = db.sql().deliveries.update;
    let updated: Vec<Delivery> = on_either!(timed db, |pool| sqlx::query_as(sql)
        .bind(changes.reference.as_deref())
        .bind(changes.recipient.as_deref())
        .bind(changes.address.as_deref())
        .bind(changes.status.map(Status::as_str))
        .bind(id)
        .fetch_all(pool) // to the last step: the commit (see the module comment)
        .await)
    .map_err(|e| match &changes.reference {
        Some(reference) => duplicate_reference(e, reference),
        None => e.into(),
    })?;
    Ok(updated.into_iter().next())
}

/// Returns true when a delivery was deleted.
pub async fn delete(db: &Db, id: i64) -> sqlx::Result<bool> {
    let done = on_either!(timed db, |pool| sqlx::query(
        "DELETE FROM deliveries WHERE id = $1"
    )
    .bind(id)
    .execute(pool) // steps to the end, commit included
    .await
    .map(|done| done.rows_affected()))?;
    Ok(done > 0)
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
