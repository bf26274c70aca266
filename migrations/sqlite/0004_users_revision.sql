-- A revision number the database bumps itself whenever a user is added, changed or removed, by
-- any process (`delivery-api user ...` included). The server polls it to drop cached logins.
CREATE TABLE users_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
) STRICT;
INSERT INTO users_revision (id, revision) VALUES (1, 0);

CREATE TRIGGER users_inserted AFTER INSERT ON users
BEGIN UPDATE users_revision SET revision = revision + 1; END;
CREATE TRIGGER users_updated AFTER UPDATE ON users
BEGIN UPDATE users_revision SET revision = revision + 1; END;
CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN UPDATE users_revision SET revision = revision + 1; END;
