//! What a delivery body must be, before it reaches the store: valid JSON (400 otherwise), then an
//! object with the right fields and types (422 naming the field), then text rules (422).

use serde_json::value::RawValue;

use super::wire::NewDelivery;
use crate::error::{ApiError, Result};
use crate::store::deliveries as store;

/// A POST/PUT body. The JSON extractor has already refused malformed JSON (400), a wrong
/// Content-Type (415) and oversized bodies (413); what is left is valid JSON, so any mismatch
/// with a delivery is a 422 that names the field at fault.
pub fn delivery_from(body: &RawValue) -> Result<store::NewDelivery> {
    // serde also reads a struct from an array, by position (`["R-1", "Ana", "Rua 1"]`): refused.
    if !body.get().trim_start().starts_with('{') {
        return Err(ApiError::Unprocessable(
            "invalid delivery: expected a JSON object".into(),
        ));
    }
    let mut json = serde_json::Deserializer::from_str(body.get());
    let new: NewDelivery = serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let field = e.path().to_string();
        ApiError::Unprocessable(if field == "." {
            format!("invalid delivery: {}", e.inner())
        } else {
            format!("invalid delivery: `{field}`: {}", e.inner())
        })
    })?;
    validated(new).map(store::NewDelivery::from)
}

const MAX_LEN: usize = 500;

/// Trims the text fields and refuses, naming the field: values that are empty once whitespace
/// and invisible characters are set aside, values over 500 characters, control characters
/// (ESC, NUL, ...) and line breaks (CR, LF, U+2028, U+2029), which have no place in a
/// reference or a name and would reach whatever renders or logs them, and the bidi embedding,
/// override and isolate controls, which make a value display as something else ("Trojan
/// Source"). An address may span lines.
pub fn validated(mut new: NewDelivery) -> Result<NewDelivery> {
    for (field, value, line_breaks) in [
        ("reference", &mut new.reference, false),
        ("recipient", &mut new.recipient, false),
        ("address", &mut new.address, true),
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
    Ok(new)
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
                if let Ok(new) = validated(new) {
                    for value in [&new.reference, &new.recipient, &new.address] {
                        prop_assert!(!value.is_empty() && value.trim() == value && value.chars().count() <= 500);
                    }
                }
            }
        }
    }
}
