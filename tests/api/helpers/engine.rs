//! Which engine the suite runs on: SQLite, or every app on its own PostgreSQL database when
//! `DELIVERY_API_TEST_ENGINE=postgres` (scripts/test's second pass). A test about what only
//! SQLite has calls [`sqlite_only`], and is listed with the reason in `tests/api/sqlite-only.txt`.

/// The engine the suite runs on: `DELIVERY_API_TEST_ENGINE=postgres`, else SQLite.
pub fn on_postgres() -> bool {
    std::env::var("DELIVERY_API_TEST_ENGINE").is_ok_and(|e| e.eq_ignore_ascii_case("postgres"))
}

/// The tests scripts/test leaves out of its PostgreSQL pass, and why: `tests/api/sqlite-only.txt`.
pub const SQLITE_ONLY: &str = include_str!("../sqlite-only.txt");

/// (test name, reason) for each line of [`SQLITE_ONLY`].
pub fn sqlite_only_tests() -> Vec<(&'static str, &'static str)> {
    SQLITE_ONLY
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(" — ").unwrap_or((l, "")))
        .collect()
}

/// Fails the calling test on PostgreSQL. libtest cannot mark a test ignored while it runs, so
/// a test that only means something on SQLite is left out of the PostgreSQL pass by name
/// (scripts/test passes `--skip`), and this makes sure it can never pass there by doing nothing.
pub fn sqlite_only() {
    if !on_postgres() {
        return;
    }
    // libtest runs each test on a thread named after it.
    let current = std::thread::current();
    let test = current.name().unwrap_or("this test");
    let reason = sqlite_only_tests()
        .into_iter()
        .find(|(name, _)| *name == test)
        .map_or("not listed in tests/api/sqlite-only.txt", |(_, reason)| {
            reason
        });
    panic!(
        "{test} is about what only SQLite has ({reason}), and cannot pass on PostgreSQL: \
         scripts/test leaves it out of the PostgreSQL pass (tests/api/sqlite-only.txt)"
    );
}
