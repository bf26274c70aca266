//! What a delivery body must be, before it reaches the store: valid JSON (400 otherwise), then an
//! object with the right fields and types (422 naming the field), then text rules (422).
//!
//! The text rules are one table of code point ranges ([`SINGLE_LINE`], [`MULTI_LINE`], [`BLANK`]):
//! the server checks a value against it ([`check_text`]) and the OpenAPI document states the same
//! table as a JSON Schema `pattern` ([`pattern`]), so what the document allows is exactly what is
//! accepted. The pattern uses only character classes written as `\u{HEX}`, which ECMA-262 (with
//! the `u` flag, as JSON Schema reads `pattern`) and Rust's regex engines read alike.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::wire::{DeliveryPatch, DeliveryReplacement, NewDelivery};
use crate::error::{ApiError, Result};
use crate::store::deliveries as store;

/// A POST body (`status` may be left out: `pending`). The JSON extractor has already refused
/// malformed JSON (400), a wrong Content-Type (415) and oversized bodies (413); what is left is
/// valid JSON, so any mismatch with a delivery is a 422 that names the field at fault.
pub fn delivery_from(body: &RawValue) -> Result<store::NewDelivery> {
    let new: NewDelivery = object_from(body)?;
    validated(new).map(store::NewDelivery::from)
}

/// A PUT body: a whole delivery, `status` included (RFC 9110 §9.3.4: PUT replaces the resource
/// with what is sent; a left-out field is a 422 naming it, not silently reset to a default).
pub fn replacement_from(body: &RawValue) -> Result<store::NewDelivery> {
    let new: DeliveryReplacement = object_from(body)?;
    validated(new.into()).map(store::NewDelivery::from)
}

/// A PATCH body (RFC 7396 merge patch): the fields present are checked as in a PUT, and
/// trimmed; the others stay as stored.
pub fn changes_from(body: &RawValue) -> Result<store::Changes> {
    let patch: DeliveryPatch = object_from(body)?;
    let mut changes = store::Changes {
        status: patch.status.map(Into::into),
        ..Default::default()
    };
    for (field, value, forbidden, slot) in [
        (
            "reference",
            patch.reference,
            SINGLE_LINE,
            &mut changes.reference,
        ),
        (
            "recipient",
            patch.recipient,
            SINGLE_LINE,
            &mut changes.recipient,
        ),
        ("address", patch.address, MULTI_LINE, &mut changes.address),
    ] {
        if let Some(value) = value {
            check_text(field, &value, forbidden)?;
            *slot = Some(value.trim().to_owned());
        }
    }
    Ok(changes)
}

fn object_from<T: DeserializeOwned>(body: &RawValue) -> Result<T> {
    // serde also reads a struct from an array, by position (`["R-1", "Ana", "Rua 1"]`): refused.
    if !body.get().trim_start().starts_with('{') {
        return Err(ApiError::Unprocessable(
            "invalid delivery: expected a JSON object".into(),
        ));
    }
    let mut json = serde_json::Deserializer::from_str(body.get());
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let field = e.path().to_string();
        ApiError::Unprocessable(if field == "." {
            format!("invalid delivery: {}", e.inner())
        } else {
            format!("invalid delivery: `{field}`: {}", e.inner())
        })
    })
}

/// The most characters (Unicode code points, as JSON Schema's `maxLength` counts them) a text
/// field may have, as sent: spaces around the value count too.
pub const MAX_LEN: usize = 500;

/// Never allowed in `reference` and `recipient`: control characters (Unicode `Cc`: C0 with TAB,
/// CR and LF, DEL, C1), the line and paragraph separators U+2028/U+2029, and the bidi embedding,
/// override and isolate controls U+202A–U+202E, U+2066–U+2069 ("Trojan Source": they make a
/// value display as something else). The marks U+200E/U+200F stay allowed: mixed-direction text
/// legitimately uses them.
pub const SINGLE_LINE: &[(char, char)] = &[
    ('\u{0}', '\u{1F}'),
    ('\u{7F}', '\u{9F}'),
    ('\u{2028}', '\u{202E}'),
    ('\u{2066}', '\u{2069}'),
];

/// Never allowed in `address`: the same, except the line breaks LF, CR, U+2028 and U+2029 (an
/// address may span lines).
pub const MULTI_LINE: &[(char, char)] = &[
    ('\u{0}', '\u{9}'),
    ('\u{B}', '\u{C}'),
    ('\u{E}', '\u{1F}'),
    ('\u{7F}', '\u{9F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2066}', '\u{2069}'),
];

/// Characters that show nothing: Unicode White_Space (what `str::trim` removes), and the
/// Default_Ignorable_Code_Point characters (zero-width spaces and joiners, the BOM, soft hyphen,
/// variation selectors, Hangul fillers, tags) with U+2800 BRAILLE PATTERN BLANK, which is not
/// whitespace but draws nothing either. Allowed inside text (joiners matter in emoji and several
/// scripts), never as the whole value. Written out, not taken from a Unicode property, so that
/// the regex engines of every client and this table agree whatever Unicode version they know.
pub const BLANK: &[(char, char)] = &[
    ('\u{9}', '\u{D}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{A0}', '\u{A0}'),
    ('\u{AD}', '\u{AD}'),
    ('\u{34F}', '\u{34F}'),
    ('\u{61C}', '\u{61C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{2000}', '\u{200F}'),
    ('\u{2028}', '\u{202F}'),
    ('\u{205F}', '\u{206F}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3000}', '\u{3000}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

fn within(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// The JSON Schema `pattern` of a text field whose forbidden characters are `forbidden`: only
/// allowed characters, at least one of which is not blank. (`maxLength` bounds the length.)
pub fn pattern(forbidden: &[(char, char)]) -> String {
    let class = |ranges: &[&[(char, char)]]| {
        let mut class = String::from("[^");
        for &(lo, hi) in ranges.iter().flat_map(|r| r.iter()) {
            class.push_str(&format!("\\u{{{:X}}}", u32::from(lo)));
            if hi != lo {
                class.push_str(&format!("-\\u{{{:X}}}", u32::from(hi)));
            }
        }
        class.push(']');
        class
    };
    let allowed = class(&[forbidden]);
    let visible = class(&[forbidden, BLANK]);
    format!("^{allowed}*{visible}{allowed}*$")
}

/// Refuses, naming the field, a value the field's pattern and `maxLength` do not allow.
fn check_text(field: &str, value: &str, forbidden: &[(char, char)]) -> Result<()> {
    let refuse = |why: String| Err(ApiError::Unprocessable(format!("`{field}` {why}")));
    if value.chars().count() > MAX_LEN {
        return refuse(format!(
            "must be at most {MAX_LEN} characters (spaces around it included)"
        ));
    }
    if let Some(c) = value.chars().find(|&c| within(forbidden, c)) {
        return refuse(format!(
            "must not contain control, line-break or bidi-override characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    if value.chars().all(|c| within(BLANK, c)) {
        return refuse("must not be empty (nor only spaces or invisible characters)".into());
    }
    Ok(())
}

/// Checks the text fields against their rules, naming the field at fault, then trims the spaces
/// around them (`str::trim`: Unicode White_Space) for storage.
pub fn validated(mut new: NewDelivery) -> Result<NewDelivery> {
    for (field, value, forbidden) in [
        ("reference", &mut new.reference, SINGLE_LINE),
        ("recipient", &mut new.recipient, SINGLE_LINE),
        ("address", &mut new.address, MULTI_LINE),
    ] {
        check_text(field, value, forbidden)?;
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            *value = trimmed.to_owned();
        }
    }
    Ok(new)
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

    /// Characters at and beside every edge of the tables, and some ordinary text.
    fn tricky_char() -> impl Strategy<Value = char> {
        let mut edges: Vec<char> = "aZ9 é山👩-".chars().collect();
        for &(lo, hi) in SINGLE_LINE.iter().chain(MULTI_LINE).chain(BLANK) {
            for c in [
                u32::from(lo).wrapping_sub(1),
                lo.into(),
                hi.into(),
                u32::from(hi) + 1,
            ] {
                edges.extend(char::from_u32(c));
            }
        }
        prop_oneof![prop::sample::select(edges), any::<char>()]
    }

    proptest! {
        /// The pattern in the document and the server's check are the same rule: a JSON Schema
        /// validator (ECMA-262 regex semantics) given the field's schema accepts exactly the
        /// values the server accepts, lengths around 500 included.
        #[test]
        fn the_documented_pattern_and_the_check_agree(
            chars in prop::collection::vec(tricky_char(), 0..8),
            stretch in prop::option::weighted(0.3, (495usize..505, prop::sample::select(vec!["", " ", "\u{200B}", "\t"]))),
            multi_line in any::<bool>(),
        ) {
            let mut value: String = chars.iter().collect();
            if let Some((n, around)) = stretch {
                // Around the edge of maxLength, with blanks around the text (counted as sent).
                let text: String = value.chars().chain(std::iter::repeat('x')).take(n).collect();
                value = format!("{around}{text}{around}");
            }
            let forbidden = if multi_line { MULTI_LINE } else { SINGLE_LINE };
            let schema = json!({"type": "string", "minLength": 1, "maxLength": MAX_LEN,
                                "pattern": pattern(forbidden)});
            let documented = jsonschema::is_valid(&schema, &json!(value));
            let served = check_text("reference", &value, forbidden).is_ok();
            prop_assert_eq!(documented, served, "{:?}", value);
        }

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
                if let Ok(new) = validated(new) {
                    for value in [&new.reference, &new.recipient, &new.address] {
                        prop_assert!(!value.is_empty() && value.trim() == value && value.chars().count() <= 500);
                    }
                }
            }
        }
    }
}
