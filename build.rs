//! Tells the browser tests (tests/api/browser.rs) whether Chromium and ChromeDriver, and Firefox,
//! geckodriver and NSS's certutil, are here, the Angular tests (tests/api/angular.rs) whether the
//! Angular app is built, the Playwright example (tests/api/playwright.rs) whether its packages are
//! installed, and the PostgreSQL tests (tests/api/postgres.rs) whether PostgreSQL's
//! server binaries are, so that without them `cargo test` reports those tests as *ignored, with
//! the reason*, not as passed. Under `CI=true` a missing browser or PostgreSQL fails instead
//! (`.ci/run` installs them), and the Angular and Playwright tests run, and fail if `scripts/test`
//! did not build the app or install the example.

use std::path::PathBuf;

/// What `ng build` writes (examples/angular/angular.json's `outputPath`, then `browser/`).
const ANGULAR_INDEX: &str = "examples/angular/dist/browser/index.html";
/// What `npm ci` writes last in examples/playwright.
const PLAYWRIGHT_INSTALLED: &str = "examples/playwright/node_modules/.package-lock.json";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(chromium)");
    println!("cargo::rustc-check-cfg=cfg(firefox)");
    println!("cargo::rustc-check-cfg=cfg(postgres)");
    println!("cargo::rustc-check-cfg=cfg(angular_app)");
    println!("cargo::rustc-check-cfg=cfg(playwright_example)");
    // A new version directory appears here when PostgreSQL is upgraded; a first install also puts
    // psql in /usr/bin, which is on PATH and so already watched (below).
    if std::path::Path::new("/usr/lib/postgresql").is_dir() {
        println!("cargo::rerun-if-changed=/usr/lib/postgresql");
    }
    for var in [
        "PATH",
        "CHROMIUM",
        "CHROMEDRIVER",
        "FIREFOX",
        "GECKODRIVER",
        "PG_BIN",
        "CI",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|dir| dir.is_dir())
        .collect();
    for dir in &dirs {
        // Installing the browser changes one of these: look again then.
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    let found = |var: &str, names: &[&str]| {
        std::env::var_os(var).is_some()
            || names
                .iter()
                .any(|name| dirs.iter().any(|dir| dir.join(name).is_file()))
    };
    let chromium = found(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = found("CHROMEDRIVER", &["chromedriver"]);
    if chromium && driver {
        println!("cargo::rustc-cfg=chromium");
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but chromium/chromedriver are missing: install Debian's chromium and chromium-driver"
        );
    }
    // geckodriver is not packaged by Debian: `cargo install geckodriver` puts it in ~/.cargo/bin,
    // which is on PATH. certutil (libnss3-tools) gives the test profile its CA.
    let firefox = found("FIREFOX", &["firefox-esr", "firefox"]);
    let geckodriver = found("GECKODRIVER", &["geckodriver"]);
    let certutil = dirs.iter().any(|dir| dir.join("certutil").is_file());
    if firefox && geckodriver && certutil {
        println!("cargo::rustc-cfg=firefox");
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but firefox/geckodriver/certutil are missing: install Debian's firefox-esr and \
             libnss3-tools, and `cargo install geckodriver --locked`"
        );
    }
    // `scripts/test` runs `npm ci` and `ng build` in examples/angular when npm is here. A missing
    // file would make cargo run this script on every build, so the file is watched once it
    // exists, and the directory (where the build creates dist/) until then.
    let built = std::path::Path::new(ANGULAR_INDEX);
    if built.is_file() {
        println!("cargo::rerun-if-changed={ANGULAR_INDEX}");
    } else {
        println!("cargo::rerun-if-changed=examples/angular");
    }
    if built.is_file() || std::env::var("CI").is_ok_and(|v| v == "true") {
        println!("cargo::rustc-cfg=angular_app");
    }
    // `scripts/test` runs `npm ci` in examples/playwright when npm is here: watched the same way.
    let installed = std::path::Path::new(PLAYWRIGHT_INSTALLED);
    if installed.is_file() {
        println!("cargo::rerun-if-changed={PLAYWRIGHT_INSTALLED}");
    } else {
        println!("cargo::rerun-if-changed=examples/playwright");
    }
    if installed.is_file() || std::env::var("CI").is_ok_and(|v| v == "true") {
        println!("cargo::rustc-cfg=playwright_example");
    }
    // Debian's layout (/usr/lib/postgresql/N/bin), $PG_BIN, or PATH: where tests/api/helpers/pg.rs
    // looks.
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .any(|version| version.path().join("bin/initdb").is_file());
    let postgres = debian
        || std::env::var_os("PG_BIN").is_some()
        || dirs.iter().any(|dir| dir.join("initdb").is_file());
    if postgres {
        println!("cargo::rustc-cfg=postgres");
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but PostgreSQL is missing: install Debian's postgresql");
    }
}
