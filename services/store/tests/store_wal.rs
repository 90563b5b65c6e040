//! Under a load that never pauses, the WAL still starts over (it would otherwise hold every
//! commit since the start); and `apply_then` reports each commit.
mod common;

use std::time::{Duration, Instant};

use common::{binding, TempDir};
use holdfast_store::{BindingOp, Store, StoreError};

const NOW: i64 = 1_800_000_000;
/// Long enough for three checkpoint periods (one a second).
const LOAD_FOR: Duration = Duration::from_millis(3500);
/// Enough that the writer always has a batch waiting: no pause lets a checkpoint finish.
const CALLERS: u16 = 256;
const CONTACTS: u32 = 20;

/// Salt-1 of the WAL header, which SQLite adds one to each time it starts the WAL over.
fn wal_restarts(wal: &std::path::Path) -> u32 {
    let header = std::fs::read(wal).unwrap();
    u32::from_be_bytes(header[16..20].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_restarts_under_a_steady_load() {
    let dir = TempDir::new("wal-bound");
    let path = dir.path().join("db");
    let store = Store::open(&path).await.unwrap();
    let writer = store.binding_writer().await.unwrap();
    writer
        .apply(vec![BindingOp::Upsert(binding("first", 5060, NOW + 3600))])
        .await
        .unwrap();
    let wal_path = dir.path().join("db-wal");
    let restarts_before = wal_restarts(&wal_path);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            // Bounded by time and by count.
            for i in 0..200_000u32 {
                if started.elapsed() >= LOAD_FOR {
                    break;
                }
                // A refresh: SQLite writes no page for a row updated to what it already holds.
                let mut b = binding(&format!("user{caller}-{}", i % CONTACTS), 5060, NOW + 3600);
                b.cseq = i;
                writer.apply(vec![BindingOp::Upsert(b)]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .unwrap()
            .unwrap();
    }
    let restarts = wal_restarts(&wal_path).wrapping_sub(restarts_before);
    // One checkpoint a second, each followed by a restart.
    assert!(
        restarts >= 2,
        "the WAL started over {restarts} times in {LOAD_FOR:?} of load"
    );
    assert_eq!(
        store.load_bindings(NOW).await.unwrap().len(),
        1 + CALLERS as usize * CONTACTS as usize
    );
    store.close().await;
}

#[tokio::test]
async fn apply_then_reports_after_the_commit() {
    let dir = TempDir::new("apply-then");
    let store = Store::open(&dir.path().join("db")).await.unwrap();
    let writer = store.binding_writer().await.unwrap();
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
    for port in 0..20u16 {
        let done = done.clone();
        writer.apply_then(
            vec![BindingOp::Upsert(binding("carol", 6000 + port, NOW + 60))],
            move |r| {
                let _ = done.send(r.is_ok());
            },
        );
    }
    drop(done);
    let mut oks = 0;
    while let Some(ok) = tokio::time::timeout(Duration::from_secs(30), results.recv())
        .await
        .unwrap()
    {
        assert!(ok);
        oks += 1;
    }
    assert_eq!(oks, 20);
    assert_eq!(store.load_bindings(NOW).await.unwrap().len(), 20);
    store.close().await;
}

#[tokio::test]
async fn apply_then_refuses_at_once_when_the_queue_is_full() {
    let dir = TempDir::new("apply-then-full");
    let store = Store::open(&dir.path().join("db")).await.unwrap();
    let writer = store.binding_writer().await.unwrap();
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
    // The test's runtime has one thread: the writer takes nothing until the loop below awaits,
    // so the queue fills and the rest are refused on the spot, with no task left waiting.
    for port in 0..5000u16 {
        let done = done.clone();
        writer.apply_then(
            vec![BindingOp::Upsert(binding("dave", port, NOW + 60))],
            move |r| {
                let _ = done.send(r);
            },
        );
    }
    drop(done);
    let (mut oks, mut busy) = (0, 0);
    while let Some(r) = tokio::time::timeout(Duration::from_secs(60), results.recv())
        .await
        .unwrap()
    {
        match r {
            Ok(()) => oks += 1,
            Err(StoreError::Busy) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((oks, busy), (4096, 904));
    assert_eq!(writer.stats().refused, 904);
    assert_eq!(store.load_bindings(NOW).await.unwrap().len(), 4096);
    store.close().await;
}
