//! Group commit of binding changes: one task owns a connection, takes whatever requests are
//! queued, applies them all in ONE transaction and answers each caller only once the COMMIT
//! (fsynced, synchronous=FULL) has returned. Many concurrent REGISTERs thus share one fsync.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::batch;
use crate::bindings::Binding;
use crate::error::StoreError;
use crate::store::Store;

/// One change to the bindings table.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingOp {
    Upsert(Binding),
    Delete {
        aor: String,
        contact: String,
    },
    DeleteAor {
        aor: String,
    },
    /// Deletes every binding with `expires_at <= now` (unix seconds).
    Expire {
        now: i64,
    },
}

/// Requests waiting for the writer; beyond this, callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;
/// Operations per transaction: bounds the latency one commit adds to its callers.
const MAX_BATCH_OPS: usize = 1024;

struct Request {
    ops: Vec<BindingOp>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    ops: AtomicU64,
    requests: AtomicU64,
}

/// Totals since the writer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub commits: u64,
    pub ops: u64,
    pub requests: u64,
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
            .send(Request { ops, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
            requests: self.counters.requests.load(Ordering::Relaxed),
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
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await?;
        let (queue, requests) = mpsc::channel(QUEUE_DEPTH);
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(conn, requests, counters.clone()));
        tokio::spawn(checkpoints(self.pool.clone(), queue.downgrade()));
        Ok(BindingWriter { queue, counters })
    }
}

/// How often the WAL is copied back into the database, off the commit path.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// PASSIVE checkpoints never wait for the writer, so commits go on while they run; they stop
/// when the last `BindingWriter` is dropped.
async fn checkpoints(pool: sqlx::SqlitePool, writer: mpsc::WeakSender<Request>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tick.tick().await;
        if writer.upgrade().is_none() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            log::warn!("WAL checkpoint: {e}");
        }
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut requests: mpsc::Receiver<Request>,
    counters: Arc<Counters>,
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
        match commit(&mut conn, batch.iter().flat_map(|r| &r.ops)).await {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters.ops.fetch_add(ops as u64, Ordering::Relaxed);
                counters
                    .requests
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for request in batch {
                    // A caller that gave up waiting still had its change committed.
                    let _ = request.reply.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                log::warn!("binding commit failed: {e}");
                if let Some(request) = batch.pop() {
                    let _ = request.reply.send(Err(e));
                }
            }
            Err(e) => {
                // Isolate the culprit: each request on its own, each caller gets its own result.
                log::warn!(
                    "group commit of {} requests failed ({e}); retrying one by one",
                    batch.len()
                );
                for request in batch {
                    let result = commit(&mut conn, request.ops.iter()).await;
                    if result.is_ok() {
                        counters.commits.fetch_add(1, Ordering::Relaxed);
                        counters
                            .ops
                            .fetch_add(request.ops.len() as u64, Ordering::Relaxed);
                        counters.requests.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = request.reply.send(result);
                }
            }
        }
    }
    log::debug!("binding writer stopped");
}

async fn commit<'a>(
    conn: &mut SqliteConnection,
    ops: impl Iterator<Item = &'a BindingOp>,
) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock up front, so busy_timeout applies instead of a failed
    // lock upgrade halfway through.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    batch::execute(&mut tx, ops).await?;
    tx.commit().await?;
    Ok(())
}
