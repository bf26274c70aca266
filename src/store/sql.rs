//! Every SQL string that differs between the engines, one constant per engine ([`SQLITE`],
//! [`POSTGRES`]), so that the differences read side by side: how a timestamp is read and written,
//! how an id counter is reached, how a row is locked. SQL the engines share stays beside its
//! query. (`$1`, `$2`… are positional parameters on both.)

use super::Db;

/// The queries on `deliveries` (`deliveries/`): they differ only in the columns and "now".
pub(super) struct DeliverySql {
    /// The columns of a `Delivery`, for SELECT and RETURNING.
    pub columns: &'static str,
    pub all: &'static str,
    /// True when the text bound as `$Q` (ASCII letters lowered) is in `reference`, `recipient`
    /// or `address`, ASCII letters compared in either case and every other character exactly, the
    /// same on both engines. (`$Q` is replaced by the query's placeholder.)
    pub contains: &'static str,
    pub one: &'static str,
    pub insert: &'static str,
    pub replace: &'static str,
    /// Sets the fields given (`$1`…`$4`, NULL: kept), in one statement: no lost update.
    pub update: &'static str,
}

macro_rules! delivery_sql {
    (columns: $columns:expr, now: $now:expr, contains: $contains:expr) => {
        DeliverySql {
            columns: $columns,
            all: concat!("SELECT ", $columns, " FROM deliveries ORDER BY id"),
            contains: $contains,
            one: concat!("SELECT ", $columns, " FROM deliveries WHERE id = $1"),
            insert: concat!(
                "INSERT INTO deliveries (reference, recipient, address, status) \
                 VALUES ($1, $2, $3, $4) RETURNING ",
                $columns
            ),
            replace: concat!(
                "UPDATE deliveries SET reference = $1, recipient = $2, address = $3, \
                 status = $4, updated_at = ",
                $now,
                " WHERE id = $5 RETURNING ",
                $columns
            ),
            update: concat!(
                "UPDATE deliveries SET reference = COALESCE($1, reference), \
                 recipient = COALESCE($2, recipient), address = COALESCE($3, address), \
                 status = COALESCE($4, status), updated_at = ",
                $now,
                " WHERE id = $5 RETURNING ",
                $columns
            ),
        }
    };
}

/// One engine's statements.
pub(super) struct Sql {
    pub deliveries: DeliverySql,
    /// `users.rs`: create a user or replace its password.
    pub upsert_user: &'static str,
    /// `seed.rs`: the deliveries revision, locked until the seed commits (PostgreSQL).
    pub seed_revision: &'static str,
    /// `seed.rs`: empty the sample, ids from 1 again.
    pub seed_reset: &'static [&'static str],
    /// `copy.rs`: one consistent snapshot of the source, where the engine needs asking.
    pub copy_snapshot: Option<&'static str>,
    /// `copy.rs`: users with their timestamps as RFC 3339 text.
    pub copy_users: &'static str,
    /// `copy.rs`: the highest delivery id ever handed out (deleted ones included); NULL if none.
    pub copy_high_water: &'static str,
    pub copy_insert_user: &'static str,
    pub copy_insert_delivery: &'static str,
    /// `copy.rs`: move the id counter to `$1`.
    pub copy_set_high_water: &'static str,
}

pub(super) const SQLITE: Sql = Sql {
    deliveries: delivery_sql!(
        columns: "id, reference, recipient, address, status, created_at, updated_at",
        now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        // SQLite's built-in lower() changes ASCII letters only; instr() has no wildcards.
        contains: "(instr(lower(reference), $Q) > 0 OR instr(lower(recipient), $Q) > 0 \
                   OR instr(lower(address), $Q) > 0)"
    ),
    upsert_user: "INSERT INTO users (name, password_hash) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,
                                           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    // One writer at a time: the transaction itself is the lock.
    seed_revision: "SELECT revision FROM deliveries_revision",
    seed_reset: &[
        "DELETE FROM deliveries",
        "DELETE FROM sqlite_sequence WHERE name = 'deliveries'",
    ],
    // A read transaction already sees one snapshot.
    copy_snapshot: None,
    copy_users: "SELECT name, password_hash, created_at, updated_at FROM users ORDER BY id",
    copy_high_water: "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'deliveries')",
    copy_insert_user: "INSERT INTO users (name, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4)",
    copy_insert_delivery: "INSERT INTO deliveries (id, reference, recipient, address, status, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    copy_set_high_water: "UPDATE sqlite_sequence SET seq = $1 WHERE name = 'deliveries'",
};

/// `timestamptz` read as SQLite stores it: UTC, RFC 3339, milliseconds.
macro_rules! rfc3339 {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        )
    };
}

pub(super) const POSTGRES: Sql = Sql {
    deliveries: delivery_sql!(
        columns: concat!(
            "id, reference, recipient, address, status, ",
            rfc3339!("created_at"),
            " AS created_at, ",
            rfc3339!("updated_at"),
            " AS updated_at"
        ),
        now: "now()",
        // lower() under the "C" collation changes ASCII letters only, as SQLite's does (the
        // database's own locale would also fold É to é: the engines would disagree).
        contains: "(strpos(lower(reference COLLATE \"C\"), $Q) > 0 \
                   OR strpos(lower(recipient COLLATE \"C\"), $Q) > 0 \
                   OR strpos(lower(address COLLATE \"C\"), $Q) > 0)"
    ),
    upsert_user: "INSERT INTO users (name, password_hash) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,
                                           updated_at = now()",
    // A second seeder waits for the first, then sees the revision it left.
    seed_revision: "SELECT revision FROM deliveries_revision FOR UPDATE",
    seed_reset: &["TRUNCATE deliveries RESTART IDENTITY"],
    copy_snapshot: Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
    copy_users: concat!(
        "SELECT name, password_hash, ",
        rfc3339!("created_at"),
        ", ",
        rfc3339!("updated_at"),
        " FROM users ORDER BY id"
    ),
    copy_high_water: "SELECT pg_sequence_last_value(pg_get_serial_sequence('deliveries', \
         'id')::regclass)",
    copy_insert_user: "INSERT INTO users (name, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3::timestamptz, $4::timestamptz)",
    copy_insert_delivery: "INSERT INTO deliveries (id, reference, recipient, address, status, \
         created_at, updated_at) OVERRIDING SYSTEM VALUE \
         VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz)",
    copy_set_high_water: "SELECT setval(pg_get_serial_sequence('deliveries', 'id'), $1)",
};

impl Db {
    /// This engine's statements.
    pub(super) fn sql(&self) -> &'static Sql {
        match self {
            Self::Sqlite { .. } => &SQLITE,
            Self::Postgres(_) => &POSTGRES,
        }
    }
}
