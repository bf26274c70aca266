-- Users who may log in with HTTP Basic auth. Passwords are stored only as argon2id PHC strings
-- ($argon2id$v=19$m=...,t=...,p=...$salt$hash); the clear password never reaches the database.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64 AND instr(name, ':') = 0),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
