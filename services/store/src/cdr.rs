//! Call detail records: sba-mediation writes one per call, `sbactl cdr` reads them.
use std::sync::OnceLock;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};

use crate::error::StoreError;
use crate::store::Store;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cdr {
    pub call_id: String,
    /// "outbound" (branch to PSTN) or "inbound".
    pub direction: String,
    /// Unix milliseconds.
    pub setup_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    pub caller: String,
    pub callee_dialled: String,
    pub callee: String,
    pub callee_sent: String,
    pub caller_sent: String,
    pub route: String,
    pub trunk: String,
    pub failovers: u32,
    pub status: u16,
    pub q850: Option<u8>,
    pub end_cause: String,
    /// For a call placed by a blind transfer: who sent the REFER.
    pub referred_by: Option<String>,
    /// For a call placed by a blind transfer: the Call-ID of the record it was transferred from.
    pub transfer_of: Option<String>,
}

/// Rows per INSERT statement: a batch is cut into these, largest first, so that four prepared
/// statements (sqlx caches them) serve every batch size. Plain parameters: 18 a row, under
/// SQLite's 32,766. (A JSON array through json_each took 8.8 µs of CPU a record against 2.4:
/// each column of each row parsed the row's JSON again.)
const CHUNKS: [usize; 4] = [128, 16, 4, 1];

const COLUMNS: &str = "call_id, direction, setup_at, answered_at, ended_at, caller, callee_dialled, callee, \
    callee_sent, caller_sent, route, trunk, failovers, status, q850, end_cause, referred_by, transfer_of";

/// The INSERT of `CHUNKS[i]` rows.
fn insert_sql(i: usize) -> &'static str {
    static SQL: [OnceLock<String>; CHUNKS.len()] = [const { OnceLock::new() }; CHUNKS.len()];
    SQL[i].get_or_init(|| {
        let row = format!("({})", vec!["?"; 18].join(", "));
        format!("INSERT INTO cdrs ({COLUMNS}) VALUES {}", vec![row; CHUNKS[i]].join(", "))
    })
}

/// Stores `cdrs` in one transaction (one fsync).
pub(crate) async fn insert_cdrs(conn: &mut SqliteConnection, cdrs: &[Cdr]) -> Result<(), StoreError> {
    if let [one] = cdrs {
        return insert_rows(conn, CHUNKS.len() - 1, std::slice::from_ref(one)).await;
    }
    let mut tx = conn.begin().await?;
    let mut rest = cdrs;
    while !rest.is_empty() {
        let i = CHUNKS.iter().position(|n| *n <= rest.len()).unwrap_or(CHUNKS.len() - 1);
        let (rows, tail) = rest.split_at(CHUNKS[i].min(rest.len()));
        insert_rows(&mut tx, i, rows).await?;
        rest = tail;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert_rows(conn: &mut SqliteConnection, chunk: usize, rows: &[Cdr]) -> Result<(), StoreError> {
    let mut q = sqlx::query(insert_sql(chunk));
    for c in rows {
        q = q
            .bind(&c.call_id)
            .bind(&c.direction)
            .bind(c.setup_at)
            .bind(c.answered_at)
            .bind(c.ended_at)
            .bind(&c.caller)
            .bind(&c.callee_dialled)
            .bind(&c.callee)
            .bind(&c.callee_sent)
            .bind(&c.caller_sent)
            .bind(&c.route)
            .bind(&c.trunk)
            .bind(i64::from(c.failovers))
            .bind(i64::from(c.status))
            .bind(c.q850.map(i64::from))
            .bind(&c.end_cause)
            .bind(&c.referred_by)
            .bind(&c.transfer_of);
    }
    q.execute(conn).await?;
    Ok(())
}

/// A record as stored: its row id orders records and names them uniquely on this appliance
/// (call record upload uses it as the idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCdr {
    pub id: i64,
    pub cdr: Cdr,
}

impl Store {
    /// Records of calls set up at or after `since` (Unix milliseconds), oldest first.
    pub async fn list_cdrs(&self, since: i64) -> Result<Vec<Cdr>, StoreError> {
        let rows = sqlx::query("SELECT * FROM cdrs WHERE setup_at >= ? ORDER BY setup_at, id")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The `limit` most recent records, newest first.
    pub async fn recent_cdrs(&self, limit: u32) -> Result<Vec<StoredCdr>, StoreError> {
        let rows = sqlx::query("SELECT * FROM cdrs ORDER BY id DESC LIMIT ?").bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(stored).collect()
    }

    /// Deletes the records of calls set up before `before` (Unix milliseconds) and, beyond the
    /// newest `keep_rows`, the oldest; returns how many went.
    pub async fn prune_cdrs(&self, before: i64, keep_rows: u32) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let old = sqlx::query("DELETE FROM cdrs WHERE setup_at < ?").bind(before).execute(&mut *tx).await?;
        let over = sqlx::query("DELETE FROM cdrs WHERE id <= (SELECT id FROM cdrs ORDER BY id DESC LIMIT 1 OFFSET ?)")
            .bind(keep_rows)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(old.rows_affected() + over.rows_affected())
    }

    /// Up to `limit` records stored after record `id`, in the order they were stored.
    pub async fn cdrs_after(&self, id: i64, limit: u32) -> Result<Vec<StoredCdr>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM cdrs WHERE id > ? ORDER BY id LIMIT ?").bind(id).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(stored).collect()
    }
}

impl Store {
    /// How many records were stored after record `id`.
    pub async fn count_cdrs_after(&self, id: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cdrs WHERE id > ?").bind(id).fetch_one(&self.pool).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn stored(row: &sqlx::sqlite::SqliteRow) -> Result<StoredCdr, StoreError> {
    Ok(StoredCdr { id: row.try_get("id")?, cdr: from_row(row)? })
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Cdr, StoreError> {
    let failovers: i64 = row.try_get("failovers")?;
    let status: i64 = row.try_get("status")?;
    let q850: Option<i64> = row.try_get("q850")?;
    Ok(Cdr {
        call_id: row.try_get("call_id")?,
        direction: row.try_get("direction")?,
        setup_at: row.try_get("setup_at")?,
        answered_at: row.try_get("answered_at")?,
        ended_at: row.try_get("ended_at")?,
        caller: row.try_get("caller")?,
        callee_dialled: row.try_get("callee_dialled")?,
        callee: row.try_get("callee")?,
        callee_sent: row.try_get("callee_sent")?,
        caller_sent: row.try_get("caller_sent")?,
        route: row.try_get("route")?,
        trunk: row.try_get("trunk")?,
        failovers: u32::try_from(failovers).map_err(|_| corrupt("failovers", failovers))?,
        status: u16::try_from(status).map_err(|_| corrupt("status", status))?,
        q850: q850.map(|q| u8::try_from(q).map_err(|_| corrupt("q850", q))).transpose()?,
        end_cause: row.try_get("end_cause")?,
        referred_by: row.try_get("referred_by")?,
        transfer_of: row.try_get("transfer_of")?,
    })
}

fn corrupt(column: &'static str, value: i64) -> StoreError {
    StoreError::Corrupt {
        column,
        value: value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdr(call_id: &str, setup_at: i64) -> Cdr {
        Cdr {
            call_id: call_id.into(),
            direction: "outbound".into(),
            setup_at,
            answered_at: Some(setup_at + 900),
            ended_at: setup_at + 5000,
            caller: "+15559873012".into(),
            callee_dialled: "2125550100".into(),
            callee: "+12125550100".into(),
            callee_sent: "12125550100".into(),
            caller_sent: "5559873012".into(),
            route: "national".into(),
            trunk: "carrier-b".into(),
            failovers: 1,
            status: 200,
            q850: Some(16),
            end_cause: "BYE from caller".into(),
            referred_by: None,
            transfer_of: None,
        }
    }

    #[tokio::test]
    async fn records_round_trip_and_filter_by_setup_time() {
        let dir = std::env::temp_dir().join(format!("holdfast-store-cdr-{}", std::process::id()));
        let store = Store::open(&dir.join("db")).await.unwrap();
        let mut unanswered = cdr("b", 2_000);
        unanswered.answered_at = None;
        unanswered.q850 = None;
        unanswered.status = 403;
        unanswered.referred_by = Some("3012".into());
        unanswered.transfer_of = Some("a".into());
        let writer = store.cdr_writer().await.unwrap();
        writer.write(cdr("a", 1_000)).unwrap();
        writer.write(unanswered.clone()).unwrap();
        writer.close().await;
        assert_eq!(
            store.list_cdrs(0).await.unwrap(),
            vec![cdr("a", 1_000), unanswered.clone()]
        );
        assert_eq!(store.list_cdrs(1_500).await.unwrap(), vec![unanswered.clone()]);
        let recent = store.recent_cdrs(1).await.unwrap();
        assert_eq!((recent.len(), &recent[0].cdr), (1, &unanswered));
        let after = store.cdrs_after(recent[0].id - 1, 10).await.unwrap();
        assert_eq!(after, recent);
        assert!(store.cdrs_after(recent[0].id, 10).await.unwrap().is_empty());
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_rows_within_the_age_limit() {
        let dir = std::env::temp_dir().join(format!("holdfast-store-cdr-prune-{}", std::process::id()));
        let store = Store::open(&dir.join("db")).await.unwrap();
        let writer = store.cdr_writer().await.unwrap();
        for i in 0..10 {
            writer.write(cdr(&format!("c{i}"), 1_000 * i)).unwrap();
        }
        writer.close().await;
        // Older than 2 s: c0, c1 go; then beyond the newest 5 rows: c2..c4.
        assert_eq!(store.prune_cdrs(2_000, 5).await.unwrap(), 5);
        let left: Vec<String> = store.list_cdrs(0).await.unwrap().into_iter().map(|c| c.call_id).collect();
        assert_eq!(left, ["c5", "c6", "c7", "c8", "c9"]);
        assert_eq!(store.prune_cdrs(0, 5).await.unwrap(), 0);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_writer_groups_records_commits_them_promptly_and_drains_on_close() {
        let dir =
            std::env::temp_dir().join(format!("holdfast-store-cdr-writer-{}", std::process::id()));
        let store = Store::open(&dir.join("db")).await.unwrap();
        let writer = store.cdr_writer().await.unwrap();
        // One record alone: on disk within one commit.
        let t0 = std::time::Instant::now();
        writer.write(cdr("first", 1)).unwrap();
        while writer.stats().records < 1 {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(5),
                "not committed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        eprintln!(
            "one call record committed {:?} after its call ended",
            t0.elapsed()
        );
        assert_eq!(store.list_cdrs(0).await.unwrap().len(), 1);
        // A burst shares commits; close() returns once every record is stored.
        for i in 0..2000 {
            let mut c = cdr(&format!("c{i}"), 10 + i);
            c.referred_by = (i % 2 == 0).then(|| "3012".into());
            writer.write(c).unwrap();
        }
        let stats = writer.close().await;
        assert_eq!((stats.records, stats.lost), (2001, 0));
        assert!(stats.commits < 100, "{stats:?}");
        let all = store.list_cdrs(0).await.unwrap();
        assert_eq!(all.len(), 2001);
        assert_eq!(all[1].referred_by.as_deref(), Some("3012"));
        assert_eq!(all[2], cdr("c1", 11));
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_record_the_database_refuses_does_not_take_its_batch_with_it() {
        let dir =
            std::env::temp_dir().join(format!("holdfast-store-cdr-refused-{}", std::process::id()));
        let store = Store::open(&dir.join("db")).await.unwrap();
        let writer = store.cdr_writer().await.unwrap();
        let mut bad = cdr("bad", 2);
        bad.direction = "sideways".into();
        for c in [cdr("a", 1), bad, cdr("b", 3)] {
            writer.write(c).unwrap();
        }
        let stats = writer.close().await;
        assert_eq!((stats.records, stats.lost), (2, 1));
        let ids: Vec<String> = store
            .list_cdrs(0)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.call_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
