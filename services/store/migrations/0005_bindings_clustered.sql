-- Every group commit writes each page it touches into the WAL, and every checkpoint writes them
-- back: clustered on its key (no rowid table beside the key's index) and without the expiry
-- index (expiry is swept in memory; the start-up purge scans the table once), an upsert of a
-- binding touches one B-tree page instead of three.
CREATE TABLE bindings_clustered (
    aor         TEXT NOT NULL,
    contact     TEXT NOT NULL,
    instance    TEXT,
    reg_id      INTEGER,
    call_id     TEXT NOT NULL,
    cseq        INTEGER NOT NULL,
    q           REAL,
    expires_at  INTEGER NOT NULL,
    -- Path header URIs (RFC 3327) in order, one per line.
    path        TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL,
    transport   TEXT NOT NULL,
    user_agent  TEXT,
    updated_at  INTEGER NOT NULL,
    origin      TEXT NOT NULL DEFAULT 'local' CHECK (origin IN ('local', 'central')),
    PRIMARY KEY (aor, contact)
) WITHOUT ROWID;

INSERT INTO bindings_clustered (aor, contact, instance, reg_id, call_id, cseq, q, expires_at,
    path, source, transport, user_agent, updated_at, origin)
SELECT aor, contact, instance, reg_id, call_id, cseq, q, expires_at,
    path, source, transport, user_agent, updated_at, origin FROM bindings;

DROP TABLE bindings;
ALTER TABLE bindings_clustered RENAME TO bindings;
