//! The delivery resource: its types, its input rules and its queries.
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

use std::fmt;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::SqlitePool;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
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
                Status::ALL
                    .into_iter()
                    .find(|s| s.as_str() == value)
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_str(StatusName)
    }
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
    /// Trims the text fields and refuses, naming the field: values that are empty once whitespace
    /// and invisible characters are set aside, values over 500 characters, control characters
    /// (ESC, NUL, ...) and line breaks (CR, LF, U+2028, U+2029), which have no place in a
    /// reference or a name and would reach whatever renders or logs them, and the bidi embedding,
    /// override and isolate controls, which make a value display as something else ("Trojan
    /// Source"). An address may span lines.
    pub fn validated(mut self) -> Result<Self, ApiError> {
        for (field, value, line_breaks) in [
            ("reference", &mut self.reference, false),
            ("recipient", &mut self.recipient, false),
            ("address", &mut self.address, true),
        ] {
            let refuse = |why: &str| Err(ApiError::Unprocessable(format!("`{field}` {why}")));
            let trimmed = value.trim();
            if trimmed
                .chars()
                .all(|c| c.is_whitespace() || is_invisible(c))
            {
                return refuse("must not be empty (nor only spaces or invisible characters)");
            }
            if trimmed.chars().count() > MAX_LEN {
                return refuse(&format!("must be at most {MAX_LEN} characters"));
            }
            let breaks_line = |c: char| matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
            let refused = |c: char| {
                (c.is_control() || breaks_line(c) || is_bidi_control(c))
                    && !(line_breaks && breaks_line(c))
            };
            if let Some(c) = trimmed.chars().find(|&c| refused(c)) {
                return refuse(&format!(
                    "must not contain control, line-break or bidi-override characters (found U+{:04X})",
                    u32::from(c)
                ));
            }
            if trimmed.len() != value.len() {
                *value = trimmed.to_owned();
            }
        }
        Ok(self)
    }
}

/// U+202A–U+202E (embeddings, overrides) and U+2066–U+2069 (isolates). The marks U+200E/U+200F
/// stay allowed: mixed-direction text legitimately uses them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that render as nothing: Unicode's Default_Ignorable_Code_Point property (zero-width
/// spaces and joiners, the BOM, soft hyphen, bidi and variation selectors, Hangul fillers, tags),
/// and U+2800 BRAILLE PATTERN BLANK, which is not whitespace but draws nothing either.
/// Allowed inside text (joiners matter in emoji and several scripts), never as the whole value.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{2800}' |
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
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
    let created: Vec<Delivery> = sqlx::query_as(
        "INSERT INTO deliveries (reference, recipient, address, status) VALUES (?, ?, ?, ?)
         RETURNING id, reference, recipient, address, status, created_at, updated_at",
    )
    .bind(&new.reference)
    .bind(&new.recipient)
    .bind(&new.address)
    .bind(new.status)
    .fetch_all(pool) // to the last step: the commit (see the module comment)
    .await
    .map_err(|e| duplicate_reference(e, &new.reference))?;
    created
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("INSERT … RETURNING returned no row")))
}

pub async fn replace(
    pool: &SqlitePool,
    id: i64,
    new: &NewDelivery,
) -> Result<Option<Delivery>, ApiError> {
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
    .bind(new.status)
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
