-- A revision number the database bumps itself on every change to deliveries, whoever writes.
-- The API reads it on each GET /delivery/all: an unchanged revision means the serialized list it
-- holds is still exact (and it is the list's ETag); a new one means the list is read again.
CREATE TABLE deliveries_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
) STRICT;
INSERT INTO deliveries_revision (id, revision) VALUES (1, 0);

CREATE TRIGGER deliveries_inserted AFTER INSERT ON deliveries
BEGIN UPDATE deliveries_revision SET revision = revision + 1; END;
CREATE TRIGGER deliveries_updated AFTER UPDATE ON deliveries
BEGIN UPDATE deliveries_revision SET revision = revision + 1; END;
CREATE TRIGGER deliveries_deleted AFTER DELETE ON deliveries
BEGIN UPDATE deliveries_revision SET revision = revision + 1; END;
