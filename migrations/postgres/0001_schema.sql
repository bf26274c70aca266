-- The whole schema for PostgreSQL, the same tables as migrations/sqlite/0001–0006 arrive at.
-- Timestamps are `timestamptz` (the API formats them as UTC RFC 3339 with milliseconds, as on
-- SQLite). Delivery ids are an identity column: never handed out twice, even after a delete.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64 AND strpos(name, ':') = 0),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference  text NOT NULL UNIQUE CHECK (length(trim(reference)) > 0),
    recipient  text NOT NULL CHECK (length(trim(recipient)) > 0),
    address    text NOT NULL CHECK (length(trim(address)) > 0),
    status     text NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'in_transit', 'delivered', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Revision numbers the database bumps itself on every change, whoever writes (any instance,
-- `delivery-api user …`, psql). Every authenticated request reads both (one round trip): a cached
-- login or a cached list is reused only at the revision it was built at. The UPDATE is part of
-- the writing transaction, so a new revision becomes visible together with the rows, never
-- before (a sequence would not do: nextval is not rolled back and is visible at once).
CREATE TABLE users_revision (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL
);
INSERT INTO users_revision (id, revision) VALUES (1, 0);

CREATE TABLE deliveries_revision (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL
);
INSERT INTO deliveries_revision (id, revision) VALUES (1, 0);

-- Bumped once per statement that changed at least one row (a batch of 128 rows is one bump; an
-- UPDATE or DELETE that matched nothing, or an INSERT … ON CONFLICT DO NOTHING that inserted
-- nothing, is none, as with SQLite's row triggers), and on TRUNCATE.
CREATE FUNCTION bump_users_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users_revision SET revision = revision + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION bump_users_revision_if_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE users_revision SET revision = revision + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION bump_deliveries_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE deliveries_revision SET revision = revision + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION bump_deliveries_revision_if_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE deliveries_revision SET revision = revision + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_inserted AFTER INSERT ON users REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_users_revision_if_rows();
CREATE TRIGGER users_updated AFTER UPDATE ON users REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_users_revision_if_rows();
CREATE TRIGGER users_deleted AFTER DELETE ON users REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_users_revision_if_rows();
CREATE TRIGGER users_truncated AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_users_revision();

CREATE TRIGGER deliveries_inserted AFTER INSERT ON deliveries REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_deliveries_revision_if_rows();
CREATE TRIGGER deliveries_updated AFTER UPDATE ON deliveries REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_deliveries_revision_if_rows();
CREATE TRIGGER deliveries_deleted AFTER DELETE ON deliveries REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_deliveries_revision_if_rows();
CREATE TRIGGER deliveries_truncated AFTER TRUNCATE ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION bump_deliveries_revision();
