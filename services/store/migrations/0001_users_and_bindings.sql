-- Users: only the HA1 digests (realm = domain) are kept, never the password.
CREATE TABLE users (
    name        TEXT NOT NULL,
    domain      TEXT NOT NULL,
    ha1_md5     TEXT NOT NULL,
    ha1_sha256  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (name, domain)
) WITHOUT ROWID;

-- One row per AOR and contact (RFC 3261 §10.3).
CREATE TABLE bindings (
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
);

CREATE INDEX bindings_expires_at ON bindings (expires_at);
