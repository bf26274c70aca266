//! The OpenAPI document as the app serves it (`GET /openapi.json`), and a checker that panics
//! unless a response is one the document describes: a listed status, the contract headers it
//! names, and a body that validates against its schema.

use reqwest::Response;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{Api, header, json};

/// The document as served by `GET /openapi.json`, to check responses against it.
pub struct ApiDocument {
    pub doc: Value,
    registry: jsonschema::Registry<'static>,
}

/// The URI the document is known by while its schemas are resolved (never fetched).
const DOC_URI: &str = "https://delivery-api.test/openapi.json";

/// Response headers that are part of the API's contract: when one is sent, the document must
/// name it for that status.
const CONTRACT_HEADERS: [&str; 6] = [
    "location",
    "www-authenticate",
    "retry-after",
    "etag",
    "link",
    "x-total-count",
];

impl Api {
    /// `GET /openapi.json`, without credentials (it is public).
    pub async fn openapi(&self) -> ApiDocument {
        let res = self.get_without_credentials("/openapi.json").await;
        assert_eq!(res.status(), 200, "GET /openapi.json");
        ApiDocument::new(json(res).await)
    }
}

impl ApiDocument {
    pub fn new(doc: Value) -> Self {
        let registry = jsonschema::Registry::new()
            .add(DOC_URI, doc.clone())
            .expect("the document as a resource")
            .prepare()
            .expect("the document's references resolve");
        Self { doc, registry }
    }

    /// Every documented (path template, METHOD).
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                ops.push((path.clone(), method.to_ascii_uppercase()));
            }
        }
        ops
    }

    pub fn operation(&self, method: &str, template: &str) -> &Value {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        op
    }

    /// A validator for the schema at `pointer` in the document (a JSON pointer, `{`/`}` as
    /// they are: encoded here), its `$ref`s resolved in the document, formats checked.
    pub fn validator(&self, pointer: &str) -> jsonschema::Validator {
        let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
        let schema = serde_json::json!({ "$ref": format!("{DOC_URI}#{fragment}") });
        jsonschema::options()
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("the schema at {pointer} does not build: {e}"))
    }

    /// `value` with a `$ref` followed (within the document).
    pub fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(target) => self
                .doc
                .pointer(target.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{target} resolves")),
            None => value,
        }
    }

    /// True when the operation names a security requirement (Basic auth).
    pub fn needs_credentials(&self, method: &str, template: &str) -> bool {
        self.operation(method, template)["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    }

    /// The documented response for `status`, `$ref` followed, and its JSON pointer.
    fn response(&self, method: &str, template: &str, status: u16) -> (String, &Value) {
        let op = self.operation(method, template);
        let response = &op["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which the document does not list for it"
        );
        if let Some(target) = response["$ref"].as_str() {
            let pointer = target.trim_start_matches('#').to_owned();
            let resolved = self.doc.pointer(&pointer).expect("the $ref resolves");
            return (pointer, resolved);
        }
        let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
        let pointer = format!(
            "/paths/{}/{}/responses/{status}",
            escape(template),
            method.to_ascii_lowercase()
        );
        (pointer, response)
    }

    /// Panics unless this response is one the document describes for `method template`: a listed
    /// status, contract headers it names, and a body of a listed media type that validates
    /// against its schema (JSON Schema 2020-12, formats checked).
    pub fn check(
        &self,
        method: &str,
        template: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) {
        let what = format!("{method} {template} -> {status}");
        let (pointer, response) = self.response(method, template, status);
        let documented: Vec<String> = response["headers"]
            .as_object()
            .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        for name in CONTRACT_HEADERS {
            if headers.contains_key(name) {
                assert!(
                    documented.iter().any(|d| d == name),
                    "{what}: sends {name}, which the document does not name (it names {documented:?})"
                );
            }
        }
        // A header's value is text: where its schema says more (a pattern), the value obeys it.
        for (name, documented) in response["headers"].as_object().into_iter().flatten() {
            let Some(value) = header(headers, name) else {
                continue;
            };
            let schema = self.resolve(&documented["schema"]);
            if schema["type"] != "string" {
                continue;
            }
            let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
            let at = format!("{pointer}/headers/{}/schema", escape(name));
            let validator = self.validator(&at);
            let value = Value::String(value.to_owned());
            assert!(
                validator.is_valid(&value),
                "{what}: header {name}: {value} does not match {schema}"
            );
        }
        let content = response["content"].as_object();
        if body.is_empty() {
            assert!(
                content.is_none() || method == "HEAD",
                "{what}: no body, but the document describes one"
            );
            return;
        }
        let content_type = header(headers, "content-type").unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        let media = content
            .and_then(|c| c.get(essence))
            .unwrap_or_else(|| panic!("{what}: a {content_type:?} body, not documented"));
        let Some(_) = media.get("schema") else {
            return;
        };
        let escaped = essence.replace('~', "~0").replace('/', "~1");
        // A JSON pointer in a URI fragment: `{id}` percent-encoded (RFC 6901 §6).
        let fragment = format!("{pointer}/content/{escaped}/schema")
            .replace('{', "%7B")
            .replace('}', "%7D");
        let schema = serde_json::json!({ "$ref": format!("{DOC_URI}#{fragment}") });
        let validator = jsonschema::options()
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{what}: the documented schema does not build: {e}"));
        let value: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e})"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the body does not match the document: {errors:#?}\nbody: {value}"
        );
    }

    /// [`ApiDocument::check`] on a reqwest response; returns its status, headers and body.
    pub async fn checked(
        &self,
        method: &str,
        template: &str,
        res: Response,
    ) -> (u16, HeaderMap, bytes::Bytes) {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("the body");
        self.check(method, template, status, &headers, &body);
        (status, headers, body)
    }
}
