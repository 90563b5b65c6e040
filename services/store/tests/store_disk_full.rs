//! A full disk is an error, not a panic, and loses nothing acknowledged: a child process (this
//! test binary again) runs under a file size limit (`ulimit -f`, SIGXFSZ ignored, so writes past
//! it fail like on a full disk) and writes bindings until the store refuses.
mod common;

use std::io::Write;
use std::process::Command;

use common::{binding, TempDir};
use holdfast_store::{BindingOp, Store, StoreError};

const DB_ENV: &str = "HOLDFAST_DISK_FULL_DB";
const NOW: i64 = 1_800_000_000;

#[test]
fn writes_past_the_limit_fail_cleanly_and_keep_what_was_acknowledged() {
    let dir = TempDir::new("diskfull");
    let db = dir.path().join("registrar.db");
    let exe = std::env::current_exe().unwrap();
    // 1024 blocks: 512 KiB in POSIX sh units (1 MiB where a block is 1 KiB).
    let output = Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 1024; exec \"$0\" --ignored --exact disk_full_child --nocapture --test-threads=1",
        ])
        .arg(&exe)
        .env(DB_ENV, &db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {output:?}");
    let refused = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REFUSED "))
        .unwrap_or_else(|| panic!("the store never refused a write: {stdout}"));
    assert!(
        refused.starts_with("io") || refused.starts_with("full"),
        "{refused}"
    );
    let acked: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ACK "))
        .collect();
    assert!(
        acked.len() > 10,
        "only {} acknowledged before the limit",
        acked.len()
    );

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
    let stored: std::collections::HashSet<String> = stored.into_iter().map(|b| b.aor).collect();
    assert!(acked.iter().all(|aor| stored.contains(*aor)));
}

/// The child side of the test above.
#[test]
#[ignore = "run by writes_past_the_limit_fail_cleanly_and_keep_what_was_acknowledged"]
fn disk_full_child() {
    // Without the parent (e.g. under --include-ignored) there is nothing to write to.
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(std::path::Path::new(&db)).await.unwrap();
        let writer = store.binding_writer().await.unwrap();
        let mut out = std::io::stdout().lock();
        // Bounded: 20,000 bindings are megabytes, far past the limit.
        for i in 0..20_000 {
            let ops: Vec<BindingOp> = (0..10)
                .map(|j| BindingOp::Upsert(binding(&format!("u{i}x{j}"), 5060, NOW + 3600)))
                .collect();
            let aors: Vec<String> = ops
                .iter()
                .filter_map(|op| match op {
                    BindingOp::Upsert(b) => Some(b.aor.clone()),
                    _ => None,
                })
                .collect();
            match writer.apply(ops).await {
                Ok(()) => {
                    for aor in aors {
                        writeln!(out, "ACK {aor}").unwrap();
                    }
                }
                Err(e) => {
                    let kind = match e {
                        StoreError::Io(_) => "io",
                        StoreError::DiskFull(_) => "full",
                        _ => "other",
                    };
                    writeln!(out, "REFUSED {kind} {e}").unwrap();
                    return;
                }
            }
        }
    });
}
