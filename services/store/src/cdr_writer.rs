//! Group commit of call records: sba-mediation hands each finished call's record to one task
//! without waiting (no task per call, no await on the call path); the task takes whatever
//! records are queued and inserts them with ONE statement in one transaction, so a burst of
//! calls ending together shares one fsync and a record is on disk one commit after its call
//! ended. `close` drains the queue before the service exits.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use holdfast_status::{Histogram, HistogramSnapshot};

use crate::cdr::{insert_cdrs, Cdr};
use crate::error::StoreError;
use crate::store::Store;

/// A record that was not queued: the writer task is gone (it ends only when the last handle is
/// closed, or a panic), or QUEUE records already wait for the disk.
#[derive(Debug, thiserror::Error)]
#[error("the call record of {call_id} is not stored: the writer {why}")]
pub struct CdrWriterStopped {
    pub call_id: String,
    pub why: &'static str,
}

/// Records per transaction: bounds the latency one commit adds to the records behind it.
const MAX_BATCH: usize = 512;

/// Records waiting for the disk at most (a few MB): a stalled disk must not grow memory without
/// bound. When it is full the new record is dropped and counted lost.
pub const QUEUE: usize = 20_000;

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    records: AtomicU64,
    lost: AtomicU64,
    commit_times: Histogram,
}

/// Totals since the writer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CdrWriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Records committed.
    pub records: u64,
    /// Records the database refused (logged with their Call-ID) or the full queue dropped.
    pub lost: u64,
}

/// The handle on the writer task. Records queue in memory (up to QUEUE) while the disk is slow:
/// a call never waits for its record.
pub struct CdrWriter {
    queue: mpsc::Sender<Cdr>,
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl CdrWriter {
    /// Queues `cdr` for the next commit.
    pub fn write(&self, cdr: Cdr) -> Result<(), CdrWriterStopped> {
        self.queue.try_send(cdr).map_err(|e| match e {
            mpsc::error::TrySendError::Full(cdr) => {
                self.counters.lost.fetch_add(1, Ordering::Relaxed);
                CdrWriterStopped { call_id: cdr.call_id, why: "queue is full" }
            }
            mpsc::error::TrySendError::Closed(cdr) => CdrWriterStopped { call_id: cdr.call_id, why: "has stopped" },
        })
    }

    pub fn stats(&self) -> CdrWriterStats {
        CdrWriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            records: self.counters.records.load(Ordering::Relaxed),
            lost: self.counters.lost.load(Ordering::Relaxed),
        }
    }

    /// How long the group commits of call records took.
    pub fn commit_times(&self) -> HistogramSnapshot {
        self.counters.commit_times.snapshot()
    }

    /// Commits every record queued so far and stops the task.
    pub async fn close(self) -> CdrWriterStats {
        let CdrWriter {
            queue,
            task,
            counters,
        } = self;
        drop(queue);
        if let Err(e) = task.await {
            log::error!("call record writer: {e}");
        }
        CdrWriterStats {
            commits: counters.commits.load(Ordering::Relaxed),
            records: counters.records.load(Ordering::Relaxed),
            lost: counters.lost.load(Ordering::Relaxed),
        }
    }
}

impl Store {
    /// Starts the call record writer on a connection of its own.
    pub async fn cdr_writer(&self) -> Result<CdrWriter, StoreError> {
        let conn = self.dedicated_connection().await?;
        let (queue, records) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(conn, records, counters.clone()));
        Ok(CdrWriter {
            queue,
            task,
            counters,
        })
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut records: mpsc::Receiver<Cdr>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = records.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match records.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let inserted = insert_cdrs(&mut conn, &batch).await;
        counters.commit_times.observe(started.elapsed());
        match inserted {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters
                    .records
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                // Isolate the record at fault: each on its own, the others still stored.
                log::warn!(
                    "group commit of {} call records failed ({e}); one by one",
                    batch.len()
                );
                for cdr in &batch {
                    match insert_cdrs(&mut conn, std::slice::from_ref(cdr)).await {
                        Ok(()) => {
                            counters.commits.fetch_add(1, Ordering::Relaxed);
                            counters.records.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            counters.lost.fetch_add(1, Ordering::Relaxed);
                            log::error!("call record of {} not stored: {e}", cdr.call_id);
                        }
                    }
                }
            }
        }
        batch.clear();
    }
    if let Err(e) = conn.close().await {
        log::warn!("call record writer connection: {e}");
    }
}
