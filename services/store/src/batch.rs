//! Runs of binding operations as single statements: each run of consecutive operations of one
//! kind is sent as one JSON array parameter and expanded by SQLite's json_each, so a group
//! commit of hundreds of REGISTERs costs a handful of statement executions, not hundreds.
use crate::bindings::PATH_SEPARATOR;
use crate::writer::BindingOp;

// `WHERE true` resolves the parsing ambiguity of INSERT ... SELECT ... ON CONFLICT. Rows are
// applied in array order, so of two upserts of one contact in a run the later one wins.
const UPSERT_RUN_SQL: &str = "INSERT INTO bindings (aor, contact, instance, reg_id, call_id, \
    cseq, q, expires_at, path, source, transport, user_agent, updated_at, origin) \
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
    value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, \
    value ->> 12, value ->> 13 FROM json_each(?) WHERE true \
    ON CONFLICT (aor, contact) DO UPDATE SET instance = excluded.instance, \
    reg_id = excluded.reg_id, call_id = excluded.call_id, cseq = excluded.cseq, q = excluded.q, \
    expires_at = excluded.expires_at, path = excluded.path, source = excluded.source, \
    transport = excluded.transport, user_agent = excluded.user_agent, \
    updated_at = excluded.updated_at, origin = excluded.origin";
const DELETE_RUN_SQL: &str = "DELETE FROM bindings WHERE (aor, contact) IN \
    (SELECT value ->> 0, value ->> 1 FROM json_each(?))";
const DELETE_AOR_RUN_SQL: &str =
    "DELETE FROM bindings WHERE aor IN (SELECT value FROM json_each(?))";
const EXPIRE_RUN_SQL: &str =
    "DELETE FROM bindings WHERE expires_at <= (SELECT max(value) FROM json_each(?))";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Upsert,
    Delete,
    DeleteAor,
    Expire,
}

impl Kind {
    fn of(op: &BindingOp) -> Kind {
        match op {
            BindingOp::Upsert(_) => Kind::Upsert,
            BindingOp::Delete { .. } => Kind::Delete,
            BindingOp::DeleteAor { .. } => Kind::DeleteAor,
            BindingOp::Expire { .. } => Kind::Expire,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Kind::Upsert => UPSERT_RUN_SQL,
            Kind::Delete => DELETE_RUN_SQL,
            Kind::DeleteAor => DELETE_AOR_RUN_SQL,
            Kind::Expire => EXPIRE_RUN_SQL,
        }
    }
}

/// The JSON array element of one operation, serialized straight from borrowed fields.
fn row(op: &BindingOp) -> Result<String, serde_json::Error> {
    match op {
        BindingOp::Upsert(b) => serde_json::to_string(&(
            &b.aor,
            &b.contact,
            &b.instance,
            b.reg_id,
            &b.call_id,
            b.cseq,
            b.q,
            b.expires_at,
            b.path.join(PATH_SEPARATOR),
            &b.source,
            &b.transport,
            &b.user_agent,
            b.updated_at,
            b.origin.as_str(),
        )),
        BindingOp::Delete { aor, contact } => serde_json::to_string(&(aor, contact)),
        BindingOp::DeleteAor { aor } => serde_json::to_string(aor),
        BindingOp::Expire { now } => serde_json::to_string(now),
    }
}

/// One transaction as a single multi-statement query: BEGIN IMMEDIATE, a statement per run of
/// operations of one kind (its JSON array the run's one parameter), COMMIT. Sent whole, a group
/// commit costs one round trip to sqlx's connection thread instead of one per statement: each
/// round trip waits for the registrar's busy event loop to poll the writer again.
pub(crate) struct Transaction {
    pub sql: String,
    pub params: Vec<String>,
}

// IMMEDIATE takes the write lock up front, so busy_timeout applies instead of a failed lock
// upgrade halfway through.
const BEGIN: &str = "BEGIN IMMEDIATE;";
const COMMIT: &str = "COMMIT;";

pub(crate) fn transaction<'a>(
    ops: impl Iterator<Item = &'a BindingOp>,
) -> Result<Transaction, serde_json::Error> {
    let mut sql = String::from(BEGIN);
    let mut params: Vec<String> = Vec::new();
    let mut current = None;
    for op in ops {
        let kind = Kind::of(op);
        let row = row(op)?;
        match params.last_mut() {
            Some(array) if current == Some(kind) => {
                array.push(',');
                array.push_str(&row);
            }
            _ => {
                if let Some(array) = params.last_mut() {
                    array.push(']');
                }
                sql.push_str(kind.sql());
                sql.push(';');
                params.push(format!("[{row}"));
                current = Some(kind);
            }
        }
    }
    if let Some(array) = params.last_mut() {
        array.push(']');
    }
    sql.push_str(COMMIT);
    Ok(Transaction { sql, params })
}
