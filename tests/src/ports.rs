//! Blocks of UDP ports for a relay a test starts on the host's loopback (sba-mediation's
//! `media_ports`), each held by one test process of the run at a time: a block's lock file under
//! target/test-ports is locked (flock) for the process's life, and the blocks lie below the
//! kernel's ephemeral range, where no peer's ephemeral port (sipp's media, Kamailio's, a
//! `free_port`) can land. A range picked from the pid met both kinds of clash.
use std::fs::File;
use std::net::UdpSocket;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where the blocks are: above the phones' and carriers' fixed RTP ranges (20000-22999), below
/// the embedded default's relay (30000) and the ephemeral ports (32768 up).
const AREA: RangeInclusive<u16> = 23000..=29999;

/// Ports a block: 20 calls' RTP and RTCP.
const BLOCK: u16 = 40;

/// The locks this process holds (kept until it exits).
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// A block of UDP ports (its first even: RTP's) nobody else in the run holds, each free on
/// 127.0.0.1 now.
pub fn media_ports() -> RangeInclusive<u16> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-ports");
    std::fs::create_dir_all(&dir).expect("target/test-ports");
    let blocks = (AREA.end() - AREA.start() + 1) / BLOCK;
    // Start from a different block per process so that claims rarely meet.
    let first = (std::process::id() % u32::from(blocks)) as u16;
    for i in (0..blocks).map(|i| (first + i) % blocks) {
        let start = AREA.start() + i * BLOCK;
        let range = start..=start + BLOCK - 1;
        let lock = File::options().create(true).truncate(false).write(true).open(dir.join(format!("{start}.lock")));
        let Ok(lock) = lock else { continue };
        if lock.try_lock().is_err() || !range.clone().all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            continue;
        }
        HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
        return range;
    }
    panic!("no free block of {BLOCK} UDP ports in {AREA:?}")
}
