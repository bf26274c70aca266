-- Delivery ids are never handed out twice. Without AUTOINCREMENT SQLite reuses the highest id
-- after that row is deleted (or after a failed write), so a client holding id 73 could later read
-- someone else's delivery under it. SQLite cannot add AUTOINCREMENT to an existing column: the
-- table is rebuilt with the same columns and rows, and its revision triggers are recreated.
-- (Ids deleted before this migration ran cannot be known; from here on none is reused.)
CREATE TABLE deliveries_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    reference  TEXT NOT NULL UNIQUE CHECK (length(trim(reference)) > 0),
    recipient  TEXT NOT NULL CHECK (length(trim(recipient)) > 0),
    address    TEXT NOT NULL CHECK (length(trim(address)) > 0),
    status     TEXT NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'in_transit', 'delivered', 'cancelled')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

INSERT INTO deliveries_new (id, reference, recipient, address, status, created_at, updated_at)
SELECT id, reference, recipient, address, status, created_at, updated_at FROM deliveries;

DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;

CREATE TRIGGER deliveries_inserted AFTER INSERT ON deliveries
BEGIN UPDATE deliveries_revision SET revision = revision + 1; END;
CREATE TRIGGER deliveries_updated AFTER UPDATE ON deliveries
BEGIN UPDATE deliveries_revision SET revision = revision + 1; END;
CREATE TRIGGER deliveries_deleted AFTER DELETE ON deliveries
BEGIN UPDATE deliveries_revision SET revision = revision + 1; END;
-- The list's cached copy is keyed by this revision: move it on, whatever was cached is stale.
UPDATE deliveries_revision SET revision = revision + 1;
