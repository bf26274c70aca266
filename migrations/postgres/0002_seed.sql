-- PostgreSQL: the same seed as migrations/sqlite/0003_seed.sql.
-- A fresh database is usable at once: the demo user and a realistic set of deliveries.
--
-- demo / demo-password, stored as an argon2id PHC string (m=19456 KiB, t=2, p=1), as produced by
-- `delivery-api user add demo --password-stdin`. Change it before exposing the service:
--   printf '%s\n' "$NEW_PASSWORD" | delivery-api user add demo --password-stdin
INSERT INTO users (name, password_hash) VALUES
    ('demo', '$argon2id$v=19$m=19456,t=2,p=1$G9hggjHDvY/808wpp13Bag$DhkFWB4uFJswBd4jw7TTUQ4eM7oiDnKFkdqR/0UMCMg');

INSERT INTO deliveries (reference, recipient, address, status, created_at, updated_at) VALUES
    ('DLV-2026-0001', 'Ana Souza',        'Rua Augusta 1500, 01304-001 São Paulo, BR',       'delivered',  '2026-11-02T08:15:00.000Z', '2026-11-03T14:02:11.000Z'),
    ('DLV-2026-0002', 'Jonas Becker',     'Torstraße 120, 10119 Berlin, DE',                 'delivered',  '2026-11-04T09:40:00.000Z', '2026-11-05T11:30:45.000Z'),
    ('DLV-2026-0003', 'Priya Raman',      '14 MG Road, Bengaluru 560001, IN',                'in_transit', '2026-11-10T12:05:00.000Z', '2026-11-11T07:12:09.000Z'),
    ('DLV-2026-0004', 'Chloé Martin',     '8 Rue de la Paix, 75002 Paris, FR',               'in_transit', '2026-11-12T16:20:00.000Z', '2026-11-13T10:01:33.000Z'),
    ('DLV-2026-0005', 'Kenji Watanabe',   '2-1-1 Nihonbashi, Chuo-ku, Tokyo 103-0027, JP',   'pending',    '2026-11-15T03:55:00.000Z', '2026-11-15T03:55:00.000Z'),
    ('DLV-2026-0006', 'Fatima Zahra',     '27 Boulevard Zerktouni, Casablanca 20250, MA',    'cancelled',  '2026-11-16T10:10:00.000Z', '2026-11-17T09:00:00.000Z'),
    ('DLV-2026-0007', 'Liam O''Connor',   '42 Grafton Street, Dublin D02 VF65, IE',          'pending',    '2026-11-18T13:45:00.000Z', '2026-11-18T13:45:00.000Z'),
    ('DLV-2026-0008', 'Sofia Rossi',      'Via del Corso 300, 00186 Roma, IT',               'in_transit', '2026-11-20T07:30:00.000Z', '2026-11-21T18:22:50.000Z'),
    ('DLV-2026-0009', 'Mateo García',     'Calle de Alcalá 50, 28014 Madrid, ES',            'pending',    '2026-11-22T11:00:00.000Z', '2026-11-22T11:00:00.000Z'),
    ('DLV-2026-0010', 'Olivia Johnson',   '350 Fifth Avenue, New York, NY 10118, US',        'delivered',  '2026-11-23T15:25:00.000Z', '2026-11-25T09:47:12.000Z'),
    ('DLV-2026-0011', 'Noah Williams',    '1 Martin Place, Sydney NSW 2000, AU',             'pending',    '2026-11-25T22:10:00.000Z', '2026-11-25T22:10:00.000Z'),
    ('DLV-2026-0012', 'Emma Jansen',      'Damrak 1, 1012 LG Amsterdam, NL',                 'in_transit', '2026-11-26T06:35:00.000Z', '2026-11-26T19:03:27.000Z');
