-- Keys the services must keep across restarts, e.g. the one that signs the registrar's
-- Record-Route (an in-dialog request proves with it that its dialog went through the branch,
-- also after a restart). Created on first use; random, never leaves the box.
CREATE TABLE secrets (
    name   TEXT PRIMARY KEY NOT NULL,
    value  BLOB NOT NULL CHECK (length(value) = 32)
) WITHOUT ROWID;
