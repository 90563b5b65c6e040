//! Group-commit throughput: 10,000 binding upserts from 200 concurrent callers, each waiting for
//! its commit before sending the next, as REGISTER handlers do.
//!
//! `cargo run --release -p holdfast-store --example writer_throughput [DB_DIR]`
#![forbid(unsafe_code)]
use std::time::{Duration, Instant};

use holdfast_store::{Binding, BindingOp, Origin, Store};

const CALLERS: usize = 200;
const UPSERTS_PER_CALLER: usize = 50;

fn binding(caller: usize, i: usize, now: i64) -> Binding {
    let user = format!("user{:05}", caller * UPSERTS_PER_CALLER + i);
    Binding {
        aor: format!("sip:{user}@branch.example.org"),
        contact: format!("sip:{user}@10.0.{}.{}:5060", caller / 250, caller % 250),
        instance: Some(format!("<urn:uuid:{caller:08}-0000-1000-8000-{i:012}>")),
        reg_id: Some(1),
        call_id: format!("{user}-call@10.0.0.1"),
        cseq: 1,
        q: None,
        expires_at: now + 3600,
        path: Vec::new(),
        source: format!("10.0.{}.{}:5060", caller / 250, caller % 250),
        transport: "udp".to_owned(),
        user_agent: Some("sipp".to_owned()),
        updated_at: now,
        origin: Origin::Local,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("holdfast-writer-{}", std::process::id()))
        });
    let path = dir.join("throughput.db");
    let _ = std::fs::remove_file(&path);
    let store = Store::open(&path).await?;
    let writer = store.binding_writer().await?;
    let now = 1_800_000_000;

    let started = Instant::now();
    let cpu_before = process_cpu();
    let mut tasks = Vec::with_capacity(CALLERS);
    for caller in 0..CALLERS {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(UPSERTS_PER_CALLER);
            for i in 0..UPSERTS_PER_CALLER {
                let sent = Instant::now();
                writer
                    .apply(vec![BindingOp::Upsert(binding(caller, i, now))])
                    .await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, holdfast_store::StoreError>(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(CALLERS * UPSERTS_PER_CALLER);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let stats = writer.stats();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let secs = elapsed.as_secs_f64();
    println!(
        "{} upserts from {CALLERS} callers in {elapsed:.2?}: {} commits, {:.0} ops/s, {:.0} commits/s, \
         {:.1} ops/commit, latency p50 {:.2?} p99 {:.2?} max {:.2?}, process CPU {:.1} µs/op",
        stats.ops,
        stats.commits,
        stats.ops as f64 / secs,
        stats.commits as f64 / secs,
        stats.ops as f64 / stats.commits.max(1) as f64,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        cpu.as_secs_f64() * 1e6 / stats.ops.max(1) as f64,
    );
    assert_eq!(
        store.load_bindings(now).await?.len(),
        CALLERS * UPSERTS_PER_CALLER
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// User + system time of the whole process (all threads, SQLite's worker included), from
/// /proc/self/stat in USER_HZ ticks (100 on Linux).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}
