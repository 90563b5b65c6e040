-- The web admin's password as an Argon2id PHC string (salt and parameters inside); one admin.
CREATE TABLE admin_password (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    phc         TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
