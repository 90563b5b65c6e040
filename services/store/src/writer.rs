//! Group commit of binding changes: one task owns a connection, takes whatever requests are
//! queued, applies them all in ONE transaction and answers each caller only once the COMMIT
//! (fsynced, synchronous=FULL) has returned. Many concurrent REGISTERs thus share one fsync.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use holdfast_status::{Histogram, HistogramSnapshot};

use crate::batch;
use crate::bindings::BindingOp;
use crate::error::StoreError;
use crate::store::Store;

/// Requests waiting for the writer; beyond this `apply` waits to enqueue and `apply_then` is
/// refused (`StoreError::Busy`).
const QUEUE_DEPTH: usize = 4096;
/// Operations per transaction: bounds the latency one commit adds to its callers.
const MAX_BATCH_OPS: usize = 1024;

struct Request {
    ops: Vec<BindingOp>,
    reply: Reply,
}

/// How a caller hears that its operations are committed.
enum Reply {
    Wait(oneshot::Sender<Result<(), StoreError>>),
    /// Run on the writer task: no task and no channel of its own per request.
    Then(Box<dyn FnOnce(Result<(), StoreError>) + Send>),
}

impl Reply {
    fn send(self, result: Result<(), StoreError>) {
        match self {
            // A caller that gave up waiting still had its change committed.
            Reply::Wait(tx) => {
                let _ = tx.send(result);
            }
            Reply::Then(then) => then(result),
        }
    }
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    ops: AtomicU64,
    requests: AtomicU64,
    /// `apply_then` requests refused with the queue full.
    refused: AtomicU64,
    commit_times: Histogram,
}

/// Totals since the writer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub commits: u64,
    pub ops: u64,
    pub requests: u64,
    /// Refused for a full queue (`StoreError::Busy`).
    pub refused: u64,
}

/// A handle on the writer task; clone it freely. The task ends when the last handle is dropped.
#[derive(Clone)]
pub struct BindingWriter {
    queue: mpsc::Sender<Request>,
    counters: Arc<Counters>,
}

impl BindingWriter {
    /// Applies `ops` in order, atomically, and returns once they are committed to disk.
    pub async fn apply(&self, ops: Vec<BindingOp>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request {
                ops,
                reply: Reply::Wait(reply),
            })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Queues `ops` and returns at once; `then` runs with the result once they are committed (or
    /// refused). For an event loop that must not await: when the queue is full, `then` runs at
    /// once with `Busy` (the caller answers "try later"), so the queue's bound holds and no task
    /// waits for room.
    pub fn apply_then(
        &self,
        ops: Vec<BindingOp>,
        then: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) {
        let request = Request {
            ops,
            reply: Reply::Then(Box::new(then)),
        };
        match self.queue.try_send(request) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(request)) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                request.reply.send(Err(StoreError::Busy))
            }
            Err(mpsc::error::TrySendError::Closed(request)) => {
                request.reply.send(Err(StoreError::WriterStopped))
            }
        }
    }

    /// How long the group commits took (the wait a REGISTER's 200 OK has behind the disk).
    pub fn commit_times(&self) -> HistogramSnapshot {
        self.counters.commit_times.snapshot()
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
            requests: self.counters.requests.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
        }
    }
}

impl Store {
    /// Starts the writer task on its own connection. Run one per database: SQLite has a single
    /// writer anyway, and one task is what lets commits be grouped.
    pub async fn binding_writer(&self) -> Result<BindingWriter, StoreError> {
        let mut conn = self.dedicated_connection().await?;
        // A checkpoint inside a commit would hold up every REGISTER waiting on that commit (and
        // fsync the database file as well): the writer never checkpoints, a task beside it does.
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut conn)
            .await?;
        let (queue, requests) = mpsc::channel(QUEUE_DEPTH);
        let counters = Arc::new(Counters::default());
        let catch_up = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(conn, requests, counters.clone(), catch_up.clone()));
        tokio::spawn(checkpoints(self.pool.clone(), queue.downgrade(), catch_up));
        Ok(BindingWriter { queue, counters })
    }
}

/// How often the WAL is copied back into the database, off the commit path.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// PASSIVE checkpoints never wait for the writer, so commits go on while they run; they stop
/// when the last `BindingWriter` is dropped. Under a steady load the writer appends while a
/// checkpoint copies, so the WAL is never wholly copied and SQLite never starts it over: it
/// would grow without bound. When frames are left, the writer is asked to copy them itself
/// between two commits (a short pause: only what came in during this checkpoint), after which
/// its next commit restarts the WAL from the beginning.
async fn checkpoints(
    pool: sqlx::SqlitePool,
    writer: mpsc::WeakSender<Request>,
    catch_up: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tick.tick().await;
        if writer.upgrade().is_none() {
            return;
        }
        // (busy, frames in the WAL when it started, frames copied)
        let checkpoint = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)");
        match checkpoint.fetch_one(&pool).await {
            // What it reports is the WAL as it found it; frames appended since are unknown.
            Ok((_, log, _)) if log > 0 => catch_up.store(true, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => log::warn!("WAL checkpoint: {e}"),
        }
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut requests: mpsc::Receiver<Request>,
    counters: Arc<Counters>,
    catch_up: Arc<AtomicBool>,
) {
    while let Some(first) = requests.recv().await {
        let mut ops = first.ops.len();
        let mut batch = vec![first];
        while ops < MAX_BATCH_OPS {
            match requests.try_recv() {
                Ok(next) => {
                    ops += next.ops.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        // Parameters borrow the requests' bindings; sqlx copies them once for its worker thread.
        let tx = batch::transaction(batch.iter().flat_map(|r| &r.ops));
        let started = std::time::Instant::now();
        let committed = commit(&mut conn, tx).await;
        counters.commit_times.observe(started.elapsed());
        match committed {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters.ops.fetch_add(ops as u64, Ordering::Relaxed);
                counters
                    .requests
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for request in batch {
                    request.reply.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                log::warn!("binding commit failed: {e}");
                if let Some(request) = batch.pop() {
                    request.reply.send(Err(e));
                }
            }
            Err(e) => {
                // Isolate the culprit: each request on its own, each caller gets its own result.
                log::warn!(
                    "group commit of {} requests failed ({e}); retrying one by one",
                    batch.len()
                );
                for request in batch {
                    let tx = batch::transaction(request.ops.iter());
                    let result = commit(&mut conn, tx).await;
                    if result.is_ok() {
                        counters.commits.fetch_add(1, Ordering::Relaxed);
                        counters
                            .ops
                            .fetch_add(request.ops.len() as u64, Ordering::Relaxed);
                        counters.requests.fetch_add(1, Ordering::Relaxed);
                    }
                    request.reply.send(result);
                }
            }
        }
        if catch_up.swap(false, Ordering::Relaxed) {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut conn)
                .await
            {
                log::warn!("WAL checkpoint by the writer: {e}");
            }
        }
    }
    log::debug!("binding writer stopped");
}

async fn commit(
    conn: &mut SqliteConnection,
    tx: Result<batch::Transaction<'_>, serde_json::Error>,
) -> Result<(), StoreError> {
    let tx = tx?;
    let mut query = sqlx::query(&tx.sql);
    for param in tx.params {
        query = match param {
            batch::Param::Text(v) => query.bind(v),
            batch::Param::Owned(v) => query.bind(v),
            batch::Param::MaybeText(v) => query.bind(v),
            batch::Param::Int(v) => query.bind(v),
            batch::Param::MaybeInt(v) => query.bind(v),
            batch::Param::MaybeReal(v) => query.bind(v),
        };
    }
    if let Err(e) = query.execute(&mut *conn).await {
        // A statement that failed leaves the transaction open: nothing of it may stay. The
        // ROLLBACK itself fails when BEGIN was what failed; there is nothing to undo then.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e.into());
    }
    Ok(())
}
