-- Call records written by sba-mediation, one per call when it ends. Times are Unix
-- milliseconds; answered_at is NULL for a call never answered.
CREATE TABLE cdrs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id         TEXT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    setup_at        INTEGER NOT NULL,
    answered_at     INTEGER,
    ended_at        INTEGER NOT NULL,
    caller          TEXT NOT NULL,
    -- The called number as dialled, after normalization (E.164), and as sent on the trunk.
    callee_dialled  TEXT NOT NULL,
    callee          TEXT NOT NULL,
    callee_sent     TEXT NOT NULL,
    caller_sent     TEXT NOT NULL,
    route           TEXT NOT NULL,
    trunk           TEXT NOT NULL,
    -- Trunks given up on before the one that took (or last refused) the call.
    failovers       INTEGER NOT NULL,
    -- The SIP status that ended it (200 for an answered call), its Q.850 cause, and who ended it.
    status          INTEGER NOT NULL,
    q850            INTEGER,
    end_cause       TEXT NOT NULL
);

CREATE INDEX cdrs_setup_at ON cdrs (setup_at);
