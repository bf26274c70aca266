//! The delivery resource: its types and its queries. No HTTP here.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Status {
    Pending,
    InTransit,
    Delivered,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub reference: String,
    pub recipient: String,
    pub address: String,
    pub status: Status,
    pub created_at: String,
    pub updated_at: String,
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

const MAX_LEN: usize = 500;

impl NewDelivery {
    /// Trims the text fields and refuses empty or oversized ones, naming the field.
    pub fn validated(mut self) -> Result<Self, ApiError> {
        for (field, value) in [
            ("reference", &mut self.reference),
            ("recipient", &mut self.recipient),
            ("address", &mut self.address),
        ] {
            let trimmed = value.trim();
            if trimmed.is_empty() {
                return Err(ApiError::Unprocessable(format!(
                    "`{field}` must not be empty"
                )));
            }
            if trimmed.chars().count() > MAX_LEN {
                return Err(ApiError::Unprocessable(format!(
                    "`{field}` must be at most {MAX_LEN} characters"
                )));
            }
            if trimmed.len() != value.len() {
                *value = trimmed.to_owned();
            }
        }
        Ok(self)
    }
}

pub async fn all(pool: &SqlitePool) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as(
        "SELECT id, reference, recipient, address, status, created_at, updated_at
         FROM deliveries ORDER BY id",
    )
    .fetch_all(pool)
    .await
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

pub async fn create(pool: &SqlitePool, new: &NewDelivery) -> Result<Delivery, ApiError> {
    sqlx::query_as(
        "INSERT INTO deliveries (reference, recipient, address, status) VALUES (?, ?, ?, ?)
         RETURNING id, reference, recipient, address, status, created_at, updated_at",
    )
    .bind(&new.reference)
    .bind(&new.recipient)
    .bind(&new.address)
    .bind(new.status)
    .fetch_one(pool)
    .await
    .map_err(|e| duplicate_reference(e, &new.reference))
}

pub async fn replace(
    pool: &SqlitePool,
    id: i64,
    new: &NewDelivery,
) -> Result<Option<Delivery>, ApiError> {
    sqlx::query_as(
        "UPDATE deliveries
         SET reference = ?, recipient = ?, address = ?, status = ?,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         WHERE id = ?
         RETURNING id, reference, recipient, address, status, created_at, updated_at",
    )
    .bind(&new.reference)
    .bind(&new.recipient)
    .bind(&new.address)
    .bind(new.status)
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(|e| duplicate_reference(e, &new.reference))
}

/// Returns true when a delivery was deleted.
pub async fn delete(pool: &SqlitePool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM deliveries WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The UNIQUE constraint on `reference` becomes 409 Conflict that names the reference.
fn duplicate_reference(e: sqlx::Error, reference: &str) -> ApiError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => ApiError::Conflict(format!(
            "a delivery with reference {reference:?} already exists"
        )),
        _ => e.into(),
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            "[ \\t]{0,3}[a-z]{0,600}[ \\t]{0,3}".prop_map(Value::from),
            prop::sample::select(vec![
                "pending",
                "in_transit",
                "delivered",
                "cancelled",
                "lost"
            ])
            .prop_map(Value::from),
        ]
    }

    proptest! {
        /// Whatever JSON object arrives, it is refused or accepted as a clean delivery: no panic,
        /// and an accepted one has trimmed, non-empty fields of at most 500 characters.
        #[test]
        fn any_json_object_is_refused_or_clean(
            fields in proptest::collection::btree_map(
                prop::sample::select(vec!["reference", "recipient", "address", "status", "extra"]),
                leaf(),
                0..5,
            )
        ) {
            let body = json!(fields);
            if let Ok(new) = serde_json::from_value::<NewDelivery>(body) {
                prop_assert!(!fields.contains_key("extra"), "unknown fields are refused");
                if let Ok(new) = new.validated() {
                    for value in [&new.reference, &new.recipient, &new.address] {
                        prop_assert!(!value.is_empty() && value.trim() == value && value.chars().count() <= 500);
                    }
                }
            }
        }
    }
}
