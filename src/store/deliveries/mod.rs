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
//! connection keeps the write lock: every other writer waits out the busy timeout.) Creations are
//! the exception: their group commit (`creator.rs`) drives SQLite directly, one transaction per
//! batch, and rolls a failed COMMIT back itself.

mod creator;

use sqlx::{ColumnIndex, Decode, Row, Type};

pub use creator::Creator;

use super::{Db, StoreError, on_either};

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
