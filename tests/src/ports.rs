//! Host loopback ports for what a test starts: a single port (`free_port`) or a block of UDP ports
//! for a relay (`media_ports`, sba-mediation's `media_ports`). Both come from areas below the
//! kernel's ephemeral range (32768 up), where no peer's ephemeral port (sipp's, Kamailio's, qemu's
//! forwards, any client socket) lands between the test picking a port and its server binding it.
//! Each area is cut into blocks, and a block belongs to one test process at a time: its lock file
//! is locked (flock) for the process's life. The lock files are machine-wide (in the temp dir, not
//! the clone's target), as test runs in other clones of the repository share the host's ports. A
//! port asked of the kernel (bind :0, drop, bind again) and a range picked from the pid met both
//! kinds of clash.
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Ports of one kind, claimed a block at a time.
struct Area {
    ports: RangeInclusive<u16>,
    block: u16,
}

/// `media_ports`: above the phones' and carriers' fixed RTP ranges (20000-22999), below the
/// embedded default's relay (30000); a block is 20 calls' RTP and RTCP.
const MEDIA: Area = Area { ports: 23000..=29999, block: 40 };

/// `free_port`: clear of the fixed ports of the services (5060-5090, 8080, 8443, 9090), sipp
/// (media from 6000, control from 8888) and the benches (15160 up, 19000).
const SINGLE: Area = Area { ports: 10000..=14999, block: 100 };

/// `free_port`'s ports are this far apart and the ones between go with it, for what a peer binds
/// beside its port: a TLS listener or baresip's on N + 1, sipp's second media socket on N + 2.
const STRIDE: u16 = 4;
const _: () = assert!(SINGLE.block.is_multiple_of(STRIDE) && SINGLE.ports.start().is_multiple_of(STRIDE));

/// The locks this process holds (kept until it exits).
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// What is left of this process's current `free_port` block.
static SINGLES: Mutex<RangeInclusive<u16>> = Mutex::new(RangeInclusive::new(1, 0));

/// A port N free for UDP and TCP on every local address (127.0.0.1, .2, .3, 0.0.0.0), with
/// N + 1 to N + 3 free for it too; no other `free_port` of the machine's test runs returns any of
/// them while this process lives.
pub fn free_port() -> u16 {
    let mut rest = SINGLES.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if rest.is_empty() {
            *rest = SINGLE.claim(&locks(), std::process::id(), |_| true);
        }
        let port = *rest.start();
        *rest = port + STRIDE..=*rest.end();
        if (port..port + STRIDE).all(|p| udp_free(p) && TcpListener::bind((Ipv4Addr::UNSPECIFIED, p)).is_ok()) {
            return port;
        }
    }
}

/// A block of UDP ports (its first even: RTP's) nobody else in the machine's test runs holds,
/// each free on every local address now.
pub fn media_ports() -> RangeInclusive<u16> {
    MEDIA.claim(&locks(), std::process::id(), |range| range.clone().all(udp_free))
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

fn locks() -> PathBuf {
    std::env::temp_dir().join("holdfast-test-ports")
}

impl Area {
    /// A block no other process (nor this one) holds and `usable` accepts, locked until the
    /// process exits. The search starts at the block `first` picks, so claims rarely meet.
    fn claim(&self, locks: &Path, first: u32, usable: impl Fn(&RangeInclusive<u16>) -> bool) -> RangeInclusive<u16> {
        std::fs::create_dir_all(locks).unwrap_or_else(|e| panic!("{}: {e}", locks.display()));
        let blocks = (self.ports.end() - self.ports.start() + 1) / self.block;
        let first = (first % u32::from(blocks)) as u16;
        for i in (0..blocks).map(|i| (first + i) % blocks) {
            let start = self.ports.start() + i * self.block;
            let range = start..=start + self.block - 1;
            let path = locks.join(format!("{start}.lock"));
            let lock = File::options().create(true).truncate(false).write(true).open(&path);
            let lock = lock.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if lock.try_lock().is_ok() && usable(&range) {
                HELD.lock().unwrap_or_else(PoisonError::into_inner).push(lock);
                return range;
            }
        }
        panic!(
            "no block of {} ports left in {:?}: each is held by a test process (locks in {}) or has a port in use",
            self.block,
            self.ports,
            locks.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;
    use crate::wait::wait_until;
    use std::process::Command;
    use std::time::Duration;

    fn ephemeral_start() -> u16 {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("ip_local_port_range");
        range.split_whitespace().next().and_then(|p| p.parse().ok()).expect("a port")
    }

    #[test]
    fn both_areas_lie_below_the_kernels_ephemeral_ports() {
        let ephemeral = ephemeral_start();
        for area in [&MEDIA, &SINGLE] {
            assert!(*area.ports.end() < ephemeral, "{:?} reaches the ephemeral ports ({ephemeral} up)", area.ports);
        }
        assert!(SINGLE.ports.end() < MEDIA.ports.start());
    }

    #[test]
    fn free_ports_never_repeat_and_keep_their_neighbours() {
        // More than two blocks' worth: the process claims a third block.
        let ports: Vec<u16> = (0..2 * SINGLE.block / STRIDE + 1).map(|_| free_port()).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len(), "{ports:?}");
        assert!(sorted.windows(2).all(|w| w[1] - w[0] >= STRIDE), "{sorted:?}");
        assert!(sorted.iter().all(|p| SINGLE.ports.contains(p) && *p < ephemeral_start()), "{sorted:?}");
        for port in ports {
            for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
                let _udp = UdpSocket::bind((ip, port)).unwrap_or_else(|e| panic!("UDP {ip}:{port}: {e}"));
                let _tcp = TcpListener::bind((ip, port)).unwrap_or_else(|e| panic!("TCP {ip}:{port}: {e}"));
            }
        }
    }

    #[test]
    fn media_blocks_never_overlap() {
        let (a, b) = (media_ports(), media_ports());
        assert!(a.end() < b.start() || b.end() < a.start(), "{a:?} {b:?}");
        assert!(MEDIA.ports.contains(a.start()) && MEDIA.ports.contains(b.end()));
        assert_eq!((a.start() % 2, a.clone().count()), (0, usize::from(MEDIA.block)));
    }

    /// Another process's block (flock(1) holds its lock) and one this process holds through a
    /// File of its own are both passed over.
    #[test]
    fn a_held_block_is_skipped() {
        let scratch = Scratch::new("ports-held");
        let lock = |block: u16| scratch.file(&format!("{}.lock", MEDIA.ports.start() + block * MEDIA.block));
        std::fs::write(lock(0), "").expect("lock file");
        // One process that opens the lock, takes it with flock(1) and keeps it until killed.
        let mut other = Command::new("sh").args(["-c", "exec 9>\"$0\" && flock 9 && exec sleep 60"]).arg(lock(0)).spawn().expect("sh");
        wait_until("flock(1) (util-linux) holding block 0", Duration::from_secs(10), || {
            File::open(lock(0)).expect("lock file").try_lock().is_err()
        });
        let ours = File::create(lock(1)).expect("lock file");
        ours.try_lock().expect("block 1's lock");
        let got = MEDIA.claim(&scratch.path, 0, |_| true);
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!(*got.start(), MEDIA.ports.start() + 2 * MEDIA.block);
    }

    #[test]
    fn a_full_area_is_a_clear_failure() {
        let scratch = Scratch::new("ports-full");
        let full = std::panic::catch_unwind(|| Area { ports: 23000..=23079, block: 40 }.claim(&scratch.path, 0, |_| false));
        let message = full.expect_err("a block claimed where none is usable").downcast::<String>().expect("a message");
        assert!(message.starts_with("no block of 40 ports left in 23000..=23079"), "{message}");
    }
}
