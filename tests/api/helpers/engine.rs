//! Which engine the suite runs on: SQLite, or every app on its own PostgreSQL database when
//! `DELIVERY_API_TEST_ENGINE=postgres` (scripts/test's second pass).

/// The engine the suite runs on: `DELIVERY_API_TEST_ENGINE=postgres`, else SQLite.
pub fn on_postgres() -> bool {
    std::env::var("DELIVERY_API_TEST_ENGINE").is_ok_and(|e| e.eq_ignore_ascii_case("postgres"))
}
