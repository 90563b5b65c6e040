//! kill -9 under load loses no acknowledged binding: a child process (this test binary run
//! again) writes bindings through the BindingWriter and prints each one once `apply` returned;
//! it is killed with SIGKILL mid-load, and every printed binding must be in the reopened store.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{binding, TempDir};
use holdfast_store::{BindingOp, Store};

const DB_ENV: &str = "HOLDFAST_DURABILITY_DB";
const NOW: i64 = 1_800_000_000;
const WRITERS: u16 = 64;
/// Acknowledgements to see before the kill, so it lands in the middle of the load.
const ACKS_BEFORE_KILL: usize = 3_000;

#[test]
fn acknowledged_bindings_survive_sigkill() {
    let dir = TempDir::new("durability");
    let db = dir.path().join("registrar.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "durability_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut acked = Vec::new();
    while acked.len() < ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => acked.extend(parse_ack(&line)),
            Err(e) => panic!("child stopped or stalled after {} acks: {e}", acked.len()),
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child must die by the signal, not finish: {status:?}"
    );
    // Acks printed before the kill are still in the pipe.
    reader.join().unwrap();
    acked.extend(lines.try_iter().filter_map(|l| parse_ack(&l)));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stored = runtime.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let stored = store.load_bindings(NOW).await.unwrap();
        store.close().await;
        stored
    });
    let stored: std::collections::HashSet<(String, String)> =
        stored.into_iter().map(|b| (b.aor, b.contact)).collect();
    let missing: Vec<_> = acked.iter().filter(|a| !stored.contains(a)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged bindings lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
    assert!(stored.len() >= acked.len());
    eprintln!(
        "{} acknowledged bindings, {} stored after SIGKILL, none lost",
        acked.len(),
        stored.len()
    );
}

fn parse_ack(line: &str) -> Option<(String, String)> {
    let mut fields = line.strip_prefix("ACK ")?.split(' ');
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// The child side of `acknowledged_bindings_survive_sigkill`.
#[test]
#[ignore = "run by acknowledged_bindings_survive_sigkill"]
fn durability_child() {
    // Without the parent (e.g. under --include-ignored) there is nothing to write to.
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let db = PathBuf::from(db);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let writer = store.binding_writer().await.unwrap();
        let mut tasks = Vec::new();
        for task in 0..WRITERS {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                // Bounded in case the parent never kills us.
                for i in 0..100_000u32 {
                    let b = binding(&format!("u{task}x{i}"), 5060, NOW + 3600);
                    let ack = format!("ACK {} {}\n", b.aor, b.contact);
                    writer.apply(vec![BindingOp::Upsert(b)]).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    out.write_all(ack.as_bytes()).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}
