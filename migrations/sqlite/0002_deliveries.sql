-- The resource the frontend lists. `reference` is the human key (unique); `status` is one of
-- four values, enforced here as well as in the API. Timestamps are UTC RFC 3339 strings.
CREATE TABLE deliveries (
    id         INTEGER PRIMARY KEY,
    reference  TEXT NOT NULL UNIQUE CHECK (length(trim(reference)) > 0),
    recipient  TEXT NOT NULL CHECK (length(trim(recipient)) > 0),
    address    TEXT NOT NULL CHECK (length(trim(address)) > 0),
    status     TEXT NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'in_transit', 'delivered', 'cancelled')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
