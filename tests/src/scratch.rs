//! Per-test scratch directories, and waiting for a port to be bound.
use std::net::SocketAddr;
use std::path::PathBuf;

/// A fresh directory under target/test-scratch, removed when dropped unless the test failed.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/test-scratch")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("scratch dir");
        Scratch { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Waits until a process has bound UDP `addr` (a peer the test started, before it is sent
/// anything), reading the kernel's socket tables; panics after `within`.
pub fn wait_bound_udp(addr: SocketAddr, within: std::time::Duration) {
    let port = format!(":{:04X} ", addr.port());
    let deadline = std::time::Instant::now() + within;
    loop {
        let bound = ["/proc/net/udp", "/proc/net/udp6"].iter().any(|table| {
            std::fs::read_to_string(table)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1).is_some_and(|local| format!("{local} ").ends_with(&port)))
        });
        if bound {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "nothing bound UDP {addr} within {within:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
