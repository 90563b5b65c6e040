-- A counter bumped by every change to users, so a running registrar notices `sbactl user add`
-- and `user remove` at once without reloading every user to compare.
CREATE TABLE users_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO users_version (id, version) VALUES (1, 0);
CREATE TRIGGER users_version_insert AFTER INSERT ON users
    BEGIN UPDATE users_version SET version = version + 1; END;
CREATE TRIGGER users_version_delete AFTER DELETE ON users
    BEGIN UPDATE users_version SET version = version + 1; END;
CREATE TRIGGER users_version_update AFTER UPDATE ON users
    BEGIN UPDATE users_version SET version = version + 1; END;
