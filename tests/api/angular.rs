//! The article's Angular app (examples/angular), as built by `ng build`, served from an origin of
//! its own by this test and driven in headless Chromium (and, for the three behaviours of the
//! article, Firefox too) against the real server. In the right
//! order it lists, creates, and shows what each refusal means (401, 422, 429), and its Basic
//! header carries UTF-8; with `--auth-before-cors` it gets the article's status 0.
//!
//! The app is built by `scripts/test` (`npm ci`, `ng build`). Without a built app these tests are
//! ignored, with the reason (build.rs); under `CI=true` they run, and fail without one.

use std::path::Path;
use std::time::Duration;

use fantoccini::Locator;

use crate::helpers::*;

/// Where `ng build` puts the app (examples/angular/angular.json's `outputPath`, then `browser/`).
const DIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/angular/dist/browser");

/// What the app shows after a call: its message area and its table.
#[derive(Debug)]
struct Shown {
    /// The status the app got (`data-status`): 0 when the browser blocked the response.
    status: u16,
    /// The words of the message area.
    message: String,
    /// The references in the table, in order.
    references: Vec<String>,
}

/// The built app, open in a browser.
struct AngularPage {
    browser: Browser,
    /// Calls made so far: the message area numbers each answer (`data-call`).
    calls: u32,
    files: StaticFiles,
}

impl AngularPage {
    /// Opens the app `files` serves, with `?api=` naming `app`'s API, which must allow the
    /// files' origin (see [`api_allowing_the_page`]).
    async fn open(app: &TestApp, files: StaticFiles) -> Self {
        Self::open_in(Kind::Chromium, app, files).await
    }

    async fn open_in(kind: Kind, app: &TestApp, files: StaticFiles) -> Self {
        let browser = Browser::launch_in(kind, app, true).await;
        let page = format!("{}/?api={}", files.origin(), app.base);
        browser.open(&page).await;
        let shown = browser.wait_for("[data-testid='api']").await;
        assert_eq!(
            shown.text().await.expect("text"),
            app.base,
            "the app calls the API that ?api= names"
        );
        Self {
            browser,
            calls: 0,
            files,
        }
    }

    async fn fill(&self, field: &str, value: &str) {
        let input = self
            .browser
            .wait_for(&format!("[data-testid='{field}']"))
            .await;
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }

    /// Clicks "Load deliveries" with these credentials and waits for the answer.
    async fn load(&mut self, user: &str, password: &str) -> Shown {
        self.fill("user", user).await;
        self.fill("password", password).await;
        self.click("load").await
    }

    /// Fills the create form with `reference`, clicks Create and waits for the answer.
    async fn create(&mut self, reference: &str) -> Shown {
        self.fill("reference", reference).await;
        self.click("create").await
    }

    async fn click(&mut self, button: &str) -> Shown {
        self.browser
            .wait_for(&format!("[data-testid='{button}']"))
            .await
            .click()
            .await
            .expect("click");
        self.calls += 1;
        // The answer to *this* click: a condition on the page, bounded for a broken one.
        let answered = format!(
            "[data-testid='message'][data-call='{}'][data-state='done']",
            self.calls
        );
        let message = match self
            .browser
            .client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(&answered))
            .await
        {
            Ok(message) => message,
            Err(e) => panic!(
                "no answer to the click on {button} ({e}); the console:\n{}",
                self.console().await
            ),
        };
        let status = message.attr("data-status").await.expect("attr");
        let mut references = Vec::new();
        for row in self
            .browser
            .client
            .find_all(Locator::Css("[data-testid='delivery']"))
            .await
            .expect("rows")
        {
            references.push(
                row.attr("data-reference")
                    .await
                    .expect("attr")
                    .unwrap_or_default(),
            );
        }
        Shown {
            status: status
                .and_then(|s| s.parse().ok())
                .expect("a numeric status"),
            message: message.text().await.expect("text"),
            references,
        }
    }

    async fn console(&self) -> String {
        self.browser.console().await.join("\n")
    }

    async fn close(self) {
        self.browser.close().await;
    }
}

/// The API, allowing only the origin the app is served from (as `--allowed-origin
/// http://localhost:PORT` would), in the given middleware order.
/// Each behaviour of the article as `…::chromium` and `…::firefox`.
macro_rules! in_both_browsers_with_the_app {
    ($($behaviour:ident),* $(,)?) => {$(
        mod $behaviour {
            use crate::helpers::Kind;

            #[tokio::test]
            #[cfg_attr(
                not(chromium),
                ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver (.ci/run does)"
            )]
            #[cfg_attr(
                all(chromium, not(angular_app)),
                ignore = "needs the Angular app built: cd examples/angular && npm ci && npm run build (scripts/test does when npm is here)"
            )]
            async fn chromium() {
                super::$behaviour(Kind::Chromium).await
            }

            #[tokio::test]
            #[cfg_attr(
                not(firefox),
                ignore = "needs firefox, geckodriver and certutil: apt-get install firefox-esr libnss3-tools; cargo install geckodriver --locked (.ci/run does)"
            )]
            #[cfg_attr(
                all(firefox, not(angular_app)),
                ignore = "needs the Angular app built: cd examples/angular && npm ci && npm run build (scripts/test does when npm is here)"
            )]
            async fn firefox() {
                super::$behaviour(Kind::Firefox).await
            }
        }
    )*};
}

in_both_browsers_with_the_app!(
    with_cors_before_auth_the_angular_app_lists_the_deliveries_and_creates_one,
    with_cors_before_auth_a_wrong_password_shows_the_401_message_not_status_0,
    with_auth_before_cors_the_angular_app_gets_status_0_and_the_browser_blames_the_preflight,
);

async fn api_allowing_the_page(files: &StaticFiles, auth_before_cors: bool) -> TestApp {
    let origin = files.origin();
    spawn_app_with(|args| {
        args.cors.allowed_origins = vec![origin.parse().expect("origin")];
        args.auth_before_cors = auth_before_cors;
    })
    .await
}

async fn with_cors_before_auth_the_angular_app_lists_the_deliveries_and_creates_one(kind: Kind) {
    let files = StaticFiles::serve(Path::new(DIST)).await;
    let app = api_allowing_the_page(&files, false).await;
    let mut page = AngularPage::open_in(kind, &app, files).await;

    let listed = page.load(USER, PASSWORD).await;

    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.message, format!("200 OK: {SEEDED} deliveries."));
    assert_eq!(listed.references.len(), SEEDED, "{listed:?}");

    let created = page.create("NG-1").await;

    assert_eq!(created.status, 201, "{created:?}");
    assert!(
        created.message.starts_with("201 Created: /delivery/"),
        "the Location header is readable cross-origin: {created:?}"
    );
    assert_eq!(
        created.references.last().map(String::as_str),
        Some("NG-1"),
        "the new row is in the table: {created:?}"
    );
    assert_eq!(app.count_deliveries().await, SEEDED as i64 + 1);
    page.close().await;
}

async fn with_cors_before_auth_a_wrong_password_shows_the_401_message_not_status_0(kind: Kind) {
    let files = StaticFiles::serve(Path::new(DIST)).await;
    let app = api_allowing_the_page(&files, false).await;
    let mut page = AngularPage::open_in(kind, &app, files).await;

    let refused = page.load(USER, "not-the-password").await;

    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(
        refused
            .message
            .starts_with("401: wrong user name or password."),
        "{refused:?}"
    );
    assert!(
        refused
            .message
            .contains("Detail: wrong user name or password"),
        "the problem detail, readable: {refused:?}"
    );
    assert!(refused.references.is_empty(), "{refused:?}");
    page.close().await;
}

async fn with_auth_before_cors_the_angular_app_gets_status_0_and_the_browser_blames_the_preflight(
    kind: Kind,
) {
    let files = StaticFiles::serve(Path::new(DIST)).await;
    let app = api_allowing_the_page(&files, true).await;
    let mut page = AngularPage::open_in(kind, &app, files).await;

    let blocked = page.load(USER, PASSWORD).await;

    assert_eq!(
        blocked.status, 0,
        "the right password, and still 0: {blocked:?}"
    );
    assert!(
        blocked
            .message
            .starts_with("Status 0: the browser blocked the response"),
        "{blocked:?}"
    );
    assert!(
        blocked
            .message
            .contains("the API answers the preflight before Basic auth"),
        "the app names what to check: {blocked:?}"
    );
    assert!(blocked.references.is_empty(), "{blocked:?}");
    let (api, origin) = (app.url("/delivery/all"), page.files.origin());
    let expected = match kind {
        // Angular 21's HttpClient uses XMLHttpRequest unless `withFetch()`. Chromium checks
        // Access-Control-Allow-Origin before the status: the 401 from an auth layer outside CORS
        // has no CORS headers, so that is the reason it gives, not the article's "does not have
        // HTTP ok status" (docs/browser.md).
        Kind::Chromium => format!(
            "Access to XMLHttpRequest at '{api}' from origin '{origin}' has been blocked by CORS \
             policy: Response to preflight request doesn't pass access control check: No \
             'Access-Control-Allow-Origin' header is present on the requested resource."
        ),
        // Firefox names the missing header and the preflight's status (troubleshooting.md, 1a).
        Kind::Firefox => format!(
            "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote \
             resource at {api}. (Reason: CORS header ‘Access-Control-Allow-Origin’ missing). \
             Status code: 401."
        ),
    };
    let console = page
        .browser
        .console_until(|lines| lines.iter().any(|l| l.contains(&expected)))
        .await
        .join("\n");
    assert!(console.contains(&expected), "{kind:?}'s console: {console}");
    page.close().await;
}

#[tokio::test]
#[cfg_attr(
    not(chromium),
    ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver (.ci/run does)"
)]
#[cfg_attr(
    all(chromium, not(angular_app)),
    ignore = "needs the Angular app built: cd examples/angular && npm ci && npm run build (scripts/test does when npm is here)"
)]
async fn a_password_beyond_latin1_logs_in_because_the_interceptor_sends_utf8() {
    // btoa() alone throws on "€" (it takes Latin-1 only): the call would never leave the page.
    let files = StaticFiles::serve(Path::new(DIST)).await;
    let app = api_allowing_the_page(&files, false).await;
    let out = cli(
        &["user", "add", "zoë", "--password-stdin"],
        &app.db_url,
        "mot de passe à 20 €\n",
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let mut page = AngularPage::open(&app, files).await;

    let listed = page.load("zoë", "mot de passe à 20 €").await;

    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.references.len(), SEEDED, "{listed:?}");
    page.close().await;
}

#[tokio::test]
#[cfg_attr(
    not(chromium),
    ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver (.ci/run does)"
)]
#[cfg_attr(
    all(chromium, not(angular_app)),
    ignore = "needs the Angular app built: cd examples/angular && npm ci && npm run build (scripts/test does when npm is here)"
)]
async fn too_many_wrong_passwords_get_429_and_the_app_says_how_long_to_wait() {
    let files = StaticFiles::serve(Path::new(DIST)).await;
    let origin = files.origin();
    let app = spawn_app_with(|args| {
        args.cors.allowed_origins = vec![origin.parse().expect("origin")];
        // One password check a minute: the second wrong one, seconds later, is over the limit.
        args.auth.login_attempts_per_ip = 1.try_into().expect("non-zero");
    })
    .await;
    let mut page = AngularPage::open(&app, files).await;
    let refused = page.load(USER, "not-the-password").await;
    assert_eq!(refused.status, 401, "{refused:?}");

    let limited = page.load(USER, "not-the-password").await;

    assert_eq!(limited.status, 429, "{limited:?}");
    let seconds: u32 = limited
        .message
        .strip_prefix("429: too many failed logins; wait ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After's seconds, read cross-origin: {limited:?}"));
    assert!((1..=60).contains(&seconds), "{limited:?}");
    page.close().await;
}

#[tokio::test]
#[cfg_attr(
    not(chromium),
    ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver (.ci/run does)"
)]
#[cfg_attr(
    all(chromium, not(angular_app)),
    ignore = "needs the Angular app built: cd examples/angular && npm ci && npm run build (scripts/test does when npm is here)"
)]
async fn a_delivery_the_api_refuses_shows_422_with_the_problem_detail() {
    let files = StaticFiles::serve(Path::new(DIST)).await;
    let app = api_allowing_the_page(&files, false).await;
    let mut page = AngularPage::open(&app, files).await;
    page.load(USER, PASSWORD).await;

    // Not empty for the form (`required`), empty for the API once spaces are set aside.
    let refused = page.create("   ").await;

    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        refused
            .message
            .starts_with("422: the body is well-formed JSON but not a valid delivery. Detail: "),
        "{refused:?}"
    );
    assert!(refused.message.contains("reference"), "{refused:?}");
    assert_eq!(app.count_deliveries().await, SEEDED as i64);
    page.close().await;
}
