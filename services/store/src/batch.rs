//! A group commit as statements: upserts as multi-row VALUES in chunks of a fixed size (one
//! prepared statement, 14 plain parameters a row: SQLite no longer renders and re-parses a JSON
//! row for every column), the rarer deletes as one JSON array parameter expanded by json_each.
//! Either way a commit of hundreds of REGISTERs costs a handful of statement executions.
use std::sync::OnceLock;

use crate::bindings::{Binding, BindingOp, PATH_SEPARATOR};

const COLUMNS: &str = "aor, contact, instance, reg_id, call_id, cseq, q, expires_at, path, source, \
    transport, user_agent, updated_at, origin";
/// Rows per upsert statement. A shorter run is padded with copies of its last row (rewriting a
/// row with what it holds writes nothing), so that every upsert is the same statement and the
/// statements of a whole transaction take at most MAX_BATCH_OPS / UPSERT_CHUNK shapes.
const UPSERT_CHUNK: usize = 32;
const UPSERT_ON_CONFLICT: &str = "ON CONFLICT (aor, contact) DO UPDATE SET \
    instance = excluded.instance, reg_id = excluded.reg_id, call_id = excluded.call_id, \
    cseq = excluded.cseq, q = excluded.q, expires_at = excluded.expires_at, path = excluded.path, \
    source = excluded.source, transport = excluded.transport, user_agent = excluded.user_agent, \
    updated_at = excluded.updated_at, origin = excluded.origin";

/// One upsert statement; VALUES rows are inserted in order, so of two upserts of one contact
/// the later one wins.
fn upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let row = format!("({})", vec!["?"; 14].join(", "));
        format!(
            "INSERT INTO bindings ({COLUMNS}) VALUES {} {UPSERT_ON_CONFLICT};",
            vec![row; UPSERT_CHUNK].join(", ")
        )
    })
}

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
}

/// A statement parameter, borrowed from the operations where it can be (a padded chunk repeats
/// its last row: no copies of its strings).
pub(crate) enum Param<'a> {
    Text(&'a str),
    Owned(String),
    MaybeText(Option<&'a str>),
    Int(i64),
    MaybeInt(Option<i64>),
    MaybeReal(Option<f64>),
}

/// One transaction as a single multi-statement query: BEGIN IMMEDIATE, the statements of its
/// runs of operations, COMMIT. Sent whole, a group commit costs one round trip to sqlx's
/// connection thread instead of one per statement: each round trip waits for the registrar's
/// busy event loop to poll the writer again.
pub(crate) struct Transaction<'a> {
    pub sql: String,
    pub params: Vec<Param<'a>>,
}

// IMMEDIATE takes the write lock up front, so busy_timeout applies instead of a failed lock
// upgrade halfway through.
const BEGIN: &str = "BEGIN IMMEDIATE;";
const COMMIT: &str = "COMMIT;";

pub(crate) fn transaction<'a>(
    ops: impl Iterator<Item = &'a BindingOp>,
) -> Result<Transaction<'a>, serde_json::Error> {
    let mut tx = Transaction { sql: String::from(BEGIN), params: Vec::new() };
    let mut run: Vec<&BindingOp> = Vec::new();
    for op in ops {
        if run.last().is_some_and(|last| Kind::of(last) != Kind::of(op)) {
            tx.push_run(&run)?;
            run.clear();
        }
        run.push(op);
    }
    tx.push_run(&run)?;
    tx.sql.push_str(COMMIT);
    Ok(tx)
}

impl<'a> Transaction<'a> {
    /// Operations of one kind, in order.
    fn push_run(&mut self, run: &[&'a BindingOp]) -> Result<(), serde_json::Error> {
        let Some(first) = run.first() else { return Ok(()) };
        let sql = match Kind::of(first) {
            Kind::Upsert => {
                let bindings: Vec<&'a Binding> = run
                    .iter()
                    .filter_map(|op| match op {
                        BindingOp::Upsert(b) => Some(b),
                        _ => None,
                    })
                    .collect();
                for chunk in bindings.chunks(UPSERT_CHUNK) {
                    let Some(last) = chunk.last() else { continue };
                    self.sql.push_str(upsert_sql());
                    for i in 0..UPSERT_CHUNK {
                        self.push_binding(chunk.get(i).unwrap_or(last));
                    }
                }
                return Ok(());
            }
            Kind::Delete => DELETE_RUN_SQL,
            Kind::DeleteAor => DELETE_AOR_RUN_SQL,
            Kind::Expire => EXPIRE_RUN_SQL,
        };
        let rows: Vec<String> = run.iter().map(|op| json_row(op)).collect::<Result<_, _>>()?;
        self.sql.push_str(sql);
        self.sql.push(';');
        self.params.push(Param::Owned(format!("[{}]", rows.join(","))));
        Ok(())
    }

    fn push_binding(&mut self, b: &'a Binding) {
        self.params.extend([
            Param::Text(&b.aor),
            Param::Text(&b.contact),
            Param::MaybeText(b.instance.as_deref()),
            Param::MaybeInt(b.reg_id.map(i64::from)),
            Param::Text(&b.call_id),
            Param::Int(i64::from(b.cseq)),
            Param::MaybeReal(b.q.map(f64::from)),
            Param::Int(b.expires_at),
            Param::Owned(b.path.join(PATH_SEPARATOR)),
            Param::Text(&b.source),
            Param::Text(&b.transport),
            Param::MaybeText(b.user_agent.as_deref()),
            Param::Int(b.updated_at),
            Param::Text(b.origin.as_str()),
        ]);
    }
}

/// The JSON array element of a delete or expiry, for json_each.
fn json_row(op: &BindingOp) -> Result<String, serde_json::Error> {
    match op {
        BindingOp::Delete { aor, contact } => serde_json::to_string(&(aor, contact)),
        BindingOp::DeleteAor { aor } => serde_json::to_string(aor),
        BindingOp::Expire { now } => serde_json::to_string(now),
        BindingOp::Upsert(_) => unreachable!("upserts go as VALUES rows"),
    }
}
