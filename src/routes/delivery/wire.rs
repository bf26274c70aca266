//! The delivery resource on the wire: what `GET` answers and what `POST`/`PUT` take, declared
//! once, with serde (the JSON) and utoipa (the OpenAPI schema) on the same types. The store
//! speaks rows and domain values (`store::deliveries`); these convert from and into them.

use std::fmt;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, Type};

use super::input;
use crate::store::deliveries as store;

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Pending,
    InTransit,
    Delivered,
    Cancelled,
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
                store::Status::from_name(value)
                    .map(Status::from)
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_str(StatusName)
    }
}

impl From<store::Status> for Status {
    fn from(status: store::Status) -> Self {
        match status {
            store::Status::Pending => Self::Pending,
            store::Status::InTransit => Self::InTransit,
            store::Status::Delivered => Self::Delivered,
            store::Status::Cancelled => Self::Cancelled,
        }
    }
}

impl From<Status> for store::Status {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::InTransit => Self::InTransit,
            Status::Delivered => Self::Delivered,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

/// A stored delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub id: i64,
    pub reference: String,
    pub recipient: String,
    pub address: String,
    pub status: Status,
    /// RFC 3339, UTC, e.g. `2026-01-31T09:30:00.000Z`.
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<store::Delivery> for Delivery {
    fn from(row: store::Delivery) -> Self {
        Self {
            id: row.id,
            reference: row.reference,
            recipient: row.recipient,
            address: row.address,
            status: row.status.into(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The body of `POST /delivery`. Each text field is 1 to 500 characters as sent, with at least one
/// visible character, and no control or bidi-override characters (line breaks only in
/// `address`): the `pattern` says exactly that (`input.rs`). Spaces around a value are removed
/// before it is stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDelivery {
    #[schema(schema_with = reference)]
    pub reference: String,
    #[schema(schema_with = recipient)]
    pub recipient: String,
    #[schema(schema_with = address)]
    pub address: String,
    /// Defaults to `pending` (`null` is refused).
    #[serde(default)]
    pub status: Status,
}

/// The body of `PUT /delivery/{id}`: the whole delivery, `status` included (a PUT replaces
/// what is stored; nothing falls back to a default). The text rules are `NewDelivery`'s.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryReplacement {
    #[schema(schema_with = reference)]
    pub reference: String,
    #[schema(schema_with = recipient)]
    pub recipient: String,
    #[schema(schema_with = address)]
    pub address: String,
    pub status: Status,
}

impl From<DeliveryReplacement> for NewDelivery {
    fn from(put: DeliveryReplacement) -> Self {
        Self {
            reference: put.reference,
            recipient: put.recipient,
            address: put.address,
            status: put.status,
        }
    }
}

/// The body of `PATCH /delivery/{id}` (`application/merge-patch+json`, RFC 7396): the fields to
/// change, each under the same rules as in a PUT; the others are kept. None can be removed, so
/// `null` (a merge patch's "remove") is refused like any other wrong type.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = reference)]
    pub reference: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = recipient)]
    pub recipient: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = address)]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub status: Option<Status>,
}

/// A field that is there has a value: `null` is refused by the value's own type (a string, a
/// status), not read as "absent".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A text field's schema: what `input::validated` accepts, stated as JSON Schema.
fn text(forbidden: &[(char, char)], what: &str, example: &str) -> Object {
    Object::builder()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(input::MAX_LEN))
        .pattern(Some(input::pattern(forbidden)))
        .description(Some(what))
        .examples([example])
        .build()
}

fn reference() -> Object {
    text(
        input::SINGLE_LINE,
        "Unique among deliveries. One line; spaces around it are removed.",
        "R-1001",
    )
}

fn recipient() -> Object {
    text(
        input::SINGLE_LINE,
        "One line; spaces around it are removed.",
        "Ana Silva",
    )
}

fn address() -> Object {
    text(
        input::MULTI_LINE,
        "May span lines (LF, CR, U+2028, U+2029); spaces around it are removed.",
        "Rua das Flores 12, Lisboa",
    )
}

impl From<NewDelivery> for store::NewDelivery {
    fn from(new: NewDelivery) -> Self {
        Self {
            reference: new.reference,
            recipient: new.recipient,
            address: new.address,
            status: new.status.into(),
        }
    }
}
