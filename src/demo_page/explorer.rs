//! `/explorer/` on the demo page's origin: Swagger UI reading the API's `/openapi.json`. Its
//! "Try it out" calls the API cross-origin with `Authorization: Basic …`, so it is a second,
//! realistic client of the CORS policy: a preflight, then the request, as any frontend would.
//!
//! Swagger UI is vendored (swagger-ui/README.md) and compiled in: nothing is fetched from a CDN.
//! The page allows scripts and styles from its own origin and calls to the API's origin only
//! (Content-Security-Policy); no inline script, so the configuration is a small script of its own.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const BUNDLE: &[u8] = include_bytes!("swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("swagger-ui/swagger-ui.css");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>delivery-api: API explorer</title>
<link rel="stylesheet" href="swagger-ui.css">
</head>
<body>
<p style="font-family: sans-serif; margin: 1em 2em">
  <a href="/">← the demo page</a> · the API explorer: every call below goes from this page's
  origin to the API's, cross-origin, after a preflight. Click <b>Authorize</b> (demo /
  demo-password), then an operation's <b>Try it out</b>. If a call says "Failed to fetch" with
  "Possible cross-origin (CORS) issue?", the browser hid the reason (status 0): most often here
  it does not trust the API's certificate (trust <code>certs/dev-ca.crt</code>, or open the
  API's <code>/health</code> once), else the server is not running, or this origin is not
  allowed. The demo page (←) names which, from what the server saw.
</p>
<div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script>
<script src="init.js"></script>
</body>
</html>
"#;

/// The explorer's pages, built once: the init script and the CSP name the API's origin.
#[derive(Clone)]
pub struct Explorer {
    init: String,
    csp: String,
}

impl Explorer {
    /// `api_base`: the API's origin, e.g. `https://localhost:8443`.
    pub fn new(api_base: &str) -> Self {
        let url = serde_json::to_string(&format!("{api_base}/openapi.json"))
            .expect("a string serializes");
        let init = format!(
            "window.ui = SwaggerUIBundle({{\n  \
               url: {url},\n  \
               dom_id: '#swagger-ui',\n  \
               presets: [SwaggerUIBundle.presets.apis],\n  \
               layout: 'BaseLayout',\n  \
               // No badge from validator.swagger.io: nothing leaves for a third party.\n  \
               validatorUrl: null,\n\
             }});\n"
        );
        // Swagger UI sets style attributes (React): 'unsafe-inline' for styles only.
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src {api_base}; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        );
        Self { init, csp }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/explorer", web::get().to(to_slash))
        .route("/explorer/", web::get().to(page))
        .route("/explorer/init.js", web::get().to(init))
        .route(
            "/explorer/swagger-ui-bundle.js",
            web::get().to(|| asset("text/javascript; charset=utf-8", BUNDLE)),
        )
        .route(
            "/explorer/swagger-ui.css",
            web::get().to(|| asset("text/css; charset=utf-8", CSS)),
        );
}

/// Relative asset URLs need the trailing slash.
async fn to_slash() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/explorer/"))
        .finish()
}

async fn page(explorer: web::Data<Explorer>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, explorer.csp.clone()))
        .body(PAGE)
}

async fn init(explorer: web::Data<Explorer>) -> HttpResponse {
    asset_owned("text/javascript; charset=utf-8", explorer.init.clone())
}

async fn asset(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    asset_owned(content_type, body)
}

fn asset_owned(
    content_type: &'static str,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        // The same binary always serves the same bytes; the port in init.js changes per run.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
