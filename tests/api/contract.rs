//! The document is the contract, exactly: requests generated from the served `/openapi.json`
//! (proptest strategies built from its schemas, valid and deliberately invalid values mixed) go
//! to every operation, and the document's own schemas, not the generator, decide what each
//! request is. Checked on every answer:
//! - no valid input is refused (no 400/422 for a request the document allows);
//! - no invalid input is accepted (a 400 or 422, and nothing written);
//! - every response conforms (a listed status, its headers and their schemas, its body schema);
//! - what was asked is what was done: a created or replaced delivery holds the values sent
//!   (trimmed), and a list honours `status`, `q`, `sort`, `limit` and `offset`, with `Link`s
//!   that never point past either end.
//!
//! Deterministic: a fixed seed, so CI runs the same cases every time and never flakes.
//! `CONTRACT_CASES=5000 CONTRACT_SEED=7 cargo test --test api contract::` explores further.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Requests per run in CI: about 6 s of CPU; 10 s alone on two cores, longer beside other tests.
const CASES: usize = 1500;

/// One generated request, and what the document says of it.
#[derive(Debug, Clone)]
struct Case {
    method: String,
    template: String,
    id: i64,
    query: Vec<(String, Value)>,
    body: Option<Value>,
    /// The body's media type, as the document names it.
    media: String,
}

/// Strings a fuzzer reaches for: the values issue 22 found, blanks, controls, bidi overrides.
const NASTY: &[&str] = &[
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "A\nB",
    "A\r\nB",
    "Rua \u{9c} 1",
    "a\u{202e}b",
    "\u{200b}",
    "\u{200b}x",
    " x ",
    "x\u{0}y",
    "\u{2028}",
    "Line\u{2029}two",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{85}",
    "\u{feff}",
    "\u{3164}",
    "Zoë",
    "ZOË",
    "lisboa",
    "DLV",
    "%",
    "_",
    "'; DROP TABLE deliveries; --",
    "👩\u{200d}💻",
];

/// A JSON value of any type: what a wrong-typed field or parameter gets.
fn any_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..2_000).prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!([])),
        Just(json!({})),
        prop::sample::select(NASTY).prop_map(Value::from),
    ]
    .boxed()
}

/// Strings for a string schema: from its pattern, padded with spaces, stretched to its
/// `maxLength` and one past it, the nasty ones, and a nasty one inside a generated one.
fn text(schema: &Value) -> BoxedStrategy<Value> {
    let generated: BoxedStrategy<String> = match schema["pattern"].as_str() {
        // proptest reads Rust regex syntax without anchors; the document's classes read alike.
        Some(pattern) => {
            proptest::string::string_regex(pattern.trim_start_matches('^').trim_end_matches('$'))
                .unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
                .boxed()
        }
        None => "\\PC{0,20}".boxed(),
    };
    let max = schema["maxLength"].as_u64().unwrap_or(40) as usize;
    let nasty = prop::sample::select(NASTY).prop_map(str::to_owned);
    let padded = (generated.clone(), 0..3usize, 0..3usize)
        .prop_map(|(s, a, b)| format!("{}{s}{}", " ".repeat(a), " ".repeat(b)));
    let stretched = (
        generated.clone(),
        max.saturating_sub(1)..=max + 1,
        any::<bool>(),
    )
        .prop_map(|(s, n, space)| {
            let cycle: Vec<char> = if s.is_empty() {
                vec!['x']
            } else {
                s.chars().collect()
            };
            let body: String = cycle.iter().cycle().take(n).collect();
            if space { format!(" {body}") } else { body }
        });
    let spliced = (
        generated.clone(),
        nasty.clone(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(s, bad, at)| {
            let chars: Vec<char> = s.chars().collect();
            let at = at.index(chars.len() + 1);
            let (head, tail) = chars.split_at(at);
            format!(
                "{}{bad}{}",
                head.iter().collect::<String>(),
                tail.iter().collect::<String>()
            )
        });
    prop_oneof![
        14 => generated,
        2 => padded,
        2 => nasty,
        1 => stretched,
        2 => spliced,
    ]
    .prop_map(Value::from)
    .boxed()
}

/// Whole numbers around and inside `minimum`..=`maximum`, some out of range.
fn integer(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minimum"].as_i64().unwrap_or(0);
    let max = schema["maximum"].as_i64().unwrap_or(1_000_000);
    prop_oneof![
        4 => (min..=max.min(min + 30)).prop_map(Value::from),
        1 => (min..=max).prop_map(Value::from),
        1 => prop::sample::select(vec![min - 1, min, max, max + 1]).prop_map(Value::from),
    ]
    .boxed()
}

/// A value for `schema` (resolved in the document), now and then of the wrong type.
fn value_for(api: &ApiDocument, schema: &Value) -> BoxedStrategy<Value> {
    let schema = api.resolve(schema).clone();
    let right: BoxedStrategy<Value> = if let Some(values) = schema["enum"].as_array() {
        let mut values = values.clone();
        values.push(json!("lost"));
        prop::sample::select(values).boxed()
    } else {
        match schema["type"].as_str() {
            Some("string") => text(&schema),
            Some("integer") => integer(&schema),
            Some("array") => prop::collection::vec(value_for(api, &schema["items"]), 1..3)
                .prop_map(Value::Array)
                .boxed(),
            Some("object") => object(api, &schema),
            _ => any_leaf(),
        }
    };
    prop_oneof![12 => right, 1 => any_leaf()].boxed()
}

/// An object for an object schema: each required property nearly always, each optional one
/// half the time, and now and then one the schema does not name.
fn object(api: &ApiDocument, schema: &Value) -> BoxedStrategy<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
    for (name, property) in schema["properties"].as_object().expect("properties") {
        let p = if required.contains(&name.as_str()) {
            0.95
        } else {
            0.5
        };
        let name = name.clone();
        fields.push(
            prop::option::weighted(p, value_for(api, property))
                .prop_map(move |v| v.map(|v| (name.clone(), v)))
                .boxed(),
        );
    }
    let extra = prop::sample::select(vec!["colour", "id", "Status", "created_at"]);
    fields.push(
        prop::option::weighted(0.04, (extra, any_leaf()))
            .prop_map(|v| v.map(|(n, v)| (n.to_owned(), v)))
            .boxed(),
    );
    fields
        .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect()))
        .boxed()
}

/// A request to one operation: its documented query parameters (each half the time), now and
/// then one it does not document, an id that exists or not, and a body if it takes one.
fn request(api: &ApiDocument, method: &str, template: &str) -> BoxedStrategy<Case> {
    let op = api.operation(method, template);
    let mut params: Vec<BoxedStrategy<Vec<(String, Value)>>> = Vec::new();
    for param in op["parameters"].as_array().into_iter().flatten() {
        let param = api.resolve(param);
        if param["in"] != "query" {
            continue;
        }
        let name = param["name"].as_str().expect("name").to_owned();
        params.push(
            prop::option::weighted(0.4, value_for(api, &param["schema"]))
                .prop_map(move |v| v.map(|v| vec![(name.clone(), v)]).unwrap_or_default())
                .boxed(),
        );
    }
    let undocumented = prop::sample::select(vec!["stauts", "fields", "_", "page", "Limit"]);
    params.push(
        prop::option::weighted(0.08, (undocumented, "[a-z0-9]{0,4}"))
            .prop_map(|v| {
                v.map(|(n, v)| vec![(n.to_owned(), Value::from(v))])
                    .unwrap_or_default()
            })
            .boxed(),
    );
    let content = op["requestBody"]["content"].as_object();
    let (media, body): (String, BoxedStrategy<Option<Value>>) =
        match content.and_then(|c| c.iter().next()) {
            Some((media, content)) => (
                media.clone(),
                value_for(api, &content["schema"]).prop_map(Some).boxed(),
            ),
            None => (String::new(), Just(None).boxed()),
        };
    let ids = prop_oneof![4 => 1..=SEEDED as i64 + 8, 1 => Just(999_999i64)];
    let (method, template) = (method.to_owned(), template.to_owned());
    (params, body, ids)
        .prop_map(move |(params, body, id)| Case {
            method: method.clone(),
            template: template.clone(),
            id,
            query: params.into_iter().flatten().collect(),
            body,
            media: media.clone(),
        })
        .boxed()
}

/// The query as the server reads it: each parameter's values on the wire (an array exploded,
/// `style: form`; an empty one not sent at all), typed as its schema reads text (digits as a
/// number where it wants an integer, each value an item where it wants an array).
type Typed = BTreeMap<String, Value>;

/// What the document says of a case: valid (with its typed query), or the reason it is not.
fn judge(api: &ApiDocument, case: &Case) -> Result<Typed, String> {
    let op = api.operation(&case.method, &case.template);
    let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
    let at = format!(
        "/paths/{}/{}",
        escape(&case.template),
        case.method.to_ascii_lowercase()
    );
    let params: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
    let mut typed = Typed::new();
    for (name, value) in &case.query {
        let wire = on_the_wire(value);
        if wire.is_empty() {
            continue;
        }
        let Some(i) = params
            .iter()
            .position(|p| api.resolve(p)["name"] == *name && api.resolve(p)["in"] == "query")
        else {
            return Err(format!("query parameter {name} is not documented"));
        };
        let schema = api.resolve(&api.resolve(params[i])["schema"]);
        let as_text = |text: &String, schema: &Value| match schema["type"].as_str() {
            Some("integer") => text
                .parse::<i64>()
                .map_or_else(|_| json!(text), |n| json!(n)),
            _ => json!(text),
        };
        let value = if schema["type"] == "array" {
            let items = api.resolve(&schema["items"]);
            Value::Array(wire.iter().map(|t| as_text(t, items)).collect())
        } else if let [one] = wire.as_slice() {
            as_text(one, schema)
        } else {
            return Err(format!(
                "query parameter {name} is sent {} times",
                wire.len()
            ));
        };
        if !api
            .validator(&format!("{at}/parameters/{i}/schema"))
            .is_valid(&value)
        {
            return Err(format!("query parameter {name}={value} is not valid"));
        }
        typed.insert(name.clone(), value);
    }
    if let Some(body) = &case.body {
        let pointer = format!("{at}/requestBody/content/{}/schema", escape(&case.media));
        if let Some(e) = api.validator(&pointer).iter_errors(body).next() {
            return Err(format!("body: {e} at {}", e.instance_path()));
        }
    }
    Ok(typed)
}

/// A generated value as text on the wire: an array exploded, anything else as one value.
fn on_the_wire(value: &Value) -> Vec<String> {
    let values = match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    values
        .into_iter()
        .map(|value| match value {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

/// A query value as it goes on the wire (arrays exploded, as `style: form` says).
fn serialized(query: &[(String, Value)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in query {
        for text in on_the_wire(value) {
            out.append_pair(name, &text);
        }
    }
    out.finish()
}

#[tokio::test]
async fn requests_generated_from_the_document_get_exactly_the_answers_it_promises() {
    let app = spawn_app().await;
    let api = app.openapi().await;
    let cases_wanted: usize = std::env::var("CONTRACT_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    let seed: u8 = std::env::var("CONTRACT_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(22);
    let operations = api.operations();
    let strategies: Vec<BoxedStrategy<Case>> = operations
        .iter()
        .map(|(template, method)| request(&api, method, template))
        .collect();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    );
    // Writes are where the rules are: POST and PUT get more turns.
    let weights: Vec<usize> = operations
        .iter()
        .map(|(_, method)| match method.as_str() {
            "POST" | "PUT" | "PATCH" => 6,
            "GET" => 4,
            "DELETE" => 1,
            _ => 2,
        })
        .collect();
    let mut turns = Vec::new();
    for (i, w) in weights.iter().enumerate() {
        turns.extend(std::iter::repeat_n(i, *w));
    }

    let mut tally: BTreeMap<(String, bool), usize> = BTreeMap::new();
    for n in 0..cases_wanted {
        let which = turns[n % turns.len()];
        let case = strategies[which]
            .new_tree(&mut runner)
            .expect("a case")
            .current();
        let verdict = judge(&api, &case);
        *tally
            .entry((
                format!("{} {}", case.method, case.template),
                verdict.is_ok(),
            ))
            .or_default() += 1;
        let writes = case.method != "GET" && case.method != "HEAD";
        let before = if writes && verdict.is_err() {
            Some(app.snapshot().await)
        } else {
            None
        };

        let mut path = case.template.replace("{id}", &case.id.to_string());
        let query = serialized(&case.query);
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        let method = Method::from_bytes(case.method.as_bytes()).expect("method");
        let mut req = app.article_request(method, &path, ORIGIN);
        if let Some(body) = &case.body {
            req = with_content_type(req, &case.media).body(body.to_string());
        }
        let res = req.send().await.expect("sent");
        let (status, headers, body) = api.checked(&case.method, &case.template, res).await;
        let what = format!(
            "case {n} (seed {seed}): {} {path} {}",
            case.method,
            short(&format!("{:?}", case.body))
        );

        match &verdict {
            Ok(typed) => {
                let expected_refusal = match status {
                    404 => case.template.contains("{id}"),
                    409 => matches!(case.method.as_str(), "POST" | "PUT" | "PATCH"),
                    _ => false,
                };
                assert!(
                    status < 400 || expected_refusal,
                    "{what}: valid per the document, refused with {status}: {}",
                    short(&String::from_utf8_lossy(&body))
                );
                if status < 300 {
                    honoured(&case, typed, &headers, &body, &what);
                }
            }
            Err(why) => {
                assert!(
                    status == 400 || status == 422,
                    "{what}: invalid ({}), answered {status}: {}",
                    short(why),
                    short(&String::from_utf8_lossy(&body))
                );
                if let Some(before) = before {
                    assert_eq!(app.snapshot().await, before, "{what}: nothing is written");
                }
            }
        }
    }
    // Valid requests reached every operation, and invalid ones every operation that takes
    // parameters or a body (the others only by an undocumented parameter, now and then).
    for (template, method) in &operations {
        let op = api.operation(method, template);
        let takes_input = op["requestBody"].is_object()
            || op["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| api.resolve(p)["in"] == "query"));
        for valid in [true, false].into_iter().filter(|v| *v || takes_input) {
            let key = (format!("{method} {template}"), valid);
            assert!(
                tally.get(&key).copied().unwrap_or_default() > 0 || cases_wanted < 200,
                "no {} request to {method} {template}: {tally:?}",
                if valid { "valid" } else { "invalid" }
            );
        }
    }
    eprintln!("contract: {cases_wanted} requests (seed {seed}): {tally:?}");
}

/// At most 400 characters of `text`, for a failure message a person can read.
fn short(text: &str) -> String {
    match text.char_indices().nth(400) {
        Some((at, _)) => format!("{}… ({} characters)", &text[..at], text.chars().count()),
        None => text.to_owned(),
    }
}

/// A 2xx did what the request asked.
fn honoured(
    case: &Case,
    query: &Typed,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    what: &str,
) {
    match (case.method.as_str(), case.template.as_str()) {
        ("POST" | "PUT" | "PATCH", _) => {
            let sent = case.body.as_ref().expect("a body");
            let stored: Value = serde_json::from_slice(body).expect("JSON");
            // A PATCH leaves out what it does not change: only the fields sent are compared.
            for field in ["reference", "recipient", "address"] {
                if let Some(sent) = sent.get(field) {
                    let sent = sent.as_str().expect("text");
                    assert_eq!(stored[field], sent.trim(), "{what}: {field}");
                }
            }
            match sent.get("status") {
                Some(status) => assert_eq!(&stored["status"], status, "{what}: status"),
                None if case.method == "POST" => {
                    assert_eq!(stored["status"], "pending", "{what}: status")
                }
                None => {}
            }
        }
        ("GET", "/delivery/all") => {
            let items: Vec<Value> = serde_json::from_slice(body).expect("JSON");
            let statuses: Vec<&Value> = query
                .get("status")
                .and_then(Value::as_array)
                .map(|s| s.iter().collect())
                .unwrap_or_default();
            let q = query
                .get("q")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            let limit = query.get("limit").and_then(Value::as_u64);
            let offset = query.get("offset").and_then(Value::as_u64).unwrap_or(0);
            let sort = query
                .get("sort")
                .and_then(Value::as_str)
                .unwrap_or("id")
                .to_owned();
            let total: u64 = header(headers, "x-total-count")
                .expect("X-Total-Count")
                .parse()
                .expect("digits");
            for item in &items {
                assert!(
                    statuses.is_empty() || statuses.contains(&&item["status"]),
                    "{what}: {item} is not of {statuses:?}"
                );
                if let Some(q) = &q {
                    let found = ["reference", "recipient", "address"].iter().any(|f| {
                        item[f]
                            .as_str()
                            .is_some_and(|t| t.to_ascii_lowercase().contains(q.as_str()))
                    });
                    assert!(found, "{what}: {item} does not contain {q:?}");
                }
            }
            let (key, descending) = match sort.strip_prefix('-') {
                Some(key) => (key.to_owned(), true),
                None => (sort.clone(), false),
            };
            for pair in items.windows(2) {
                let k = |d: &Value| (d[key.as_str()].to_string(), d["id"].as_i64());
                let (a, b) = (k(&pair[0]), k(&pair[1]));
                let ordered = if key == "id" {
                    (a.1 < b.1) != descending
                } else if descending {
                    a >= b
                } else {
                    a <= b
                };
                assert!(ordered, "{what}: not in {sort} order: {a:?} then {b:?}");
            }
            let expected = total.saturating_sub(offset).min(limit.unwrap_or(u64::MAX));
            assert_eq!(items.len() as u64, expected, "{what}: the page's size");
            for link in header(headers, "link").unwrap_or_default().split(", ") {
                let Some(at) = link.split("offset=").nth(1) else {
                    continue;
                };
                let at: u64 = at
                    .split(['&', '>'])
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("an offset");
                assert!(at < total, "{what}: {link} points past the end ({total})");
            }
        }
        _ => {}
    }
}
