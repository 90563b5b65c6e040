//! The load itself: G.711 20 ms streams in both directions through a relay,
//! each packet carrying its send time, received with kernel timestamps
//! (SO_TIMESTAMPNS) so the generator's own scheduling does not count as
//! relay delay.

use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{recvmmsg, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn};
use nix::sys::time::TimeSpec;

const PTIME: Duration = Duration::from_millis(20);
const PAYLOAD: usize = 160;
const HEADER: usize = 12;
const BATCH: usize = 64;

/// Relay ports per call: where the A side and the B side send.
pub struct Target {
    pub relay_ip: IpAddr,
    pub calls: Vec<(u16, u16)>,
}

pub struct Outcome {
    /// Packets sent inside the measured window.
    pub sent: u64,
    /// Of those, packets that came back through the relay.
    pub received: u64,
    /// One-way delays of the received ones, sorted, in nanoseconds.
    pub delays_ns: Vec<u64>,
    /// CPU time the relay process used during the window.
    pub relay_cpu: Duration,
    pub window: Duration,
}

fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// utime + stime of `pid` from /proc/PID/stat.
pub fn process_cpu(pid: u32, tick: Duration) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; fields are counted after its ')'.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15; "state" (field 3) is index 0 here.
    Ok(tick * (ticks(11) + ticks(12)) as u32)
}

struct Window {
    start_ns: u64,
    end_ns: u64,
}

struct Tally {
    received: u64,
    delays_ns: Vec<u64>,
}

/// Runs the load: `warmup`, then the measured `duration`, then a short drain.
pub fn run(
    side_a: &UdpSocket,
    side_b: &UdpSocket,
    target: &Target,
    warmup: Duration,
    duration: Duration,
    relay_pid: u32,
    tick: Duration,
) -> anyhow::Result<Outcome> {
    let streams = target.calls.len() * 2;
    anyhow::ensure!(streams > 0, "no calls to load");
    let destinations: Vec<(&UdpSocket, SocketAddr)> = target
        .calls
        .iter()
        .map(|&(a, _)| (side_a, SocketAddr::new(target.relay_ip, a)))
        .chain(target.calls.iter().map(|&(_, b)| (side_b, SocketAddr::new(target.relay_ip, b))))
        .collect();
    // Streams are spread evenly over the 20 ms period.
    let spacing = PTIME / streams as u32;
    let start = Instant::now();
    let start_ns = realtime_ns();
    let window = Window {
        start_ns: start_ns + warmup.as_nanos() as u64,
        end_ns: start_ns + (warmup + duration).as_nanos() as u64,
    };
    let stop_sending = warmup + duration;
    let mut tally = Tally {
        received: 0,
        delays_ns: Vec::with_capacity((duration.as_secs_f64() / PTIME.as_secs_f64()) as usize * streams + 1),
    };
    let mut packet = [0xFFu8; HEADER + PAYLOAD];
    let mut next: u64 = 0;
    let mut sent: u64 = 0;
    let mut cpu_start = None;
    let mut cpu_end = None;
    loop {
        let now = start.elapsed();
        if cpu_start.is_none() && now >= warmup {
            cpu_start = Some(process_cpu(relay_pid, tick)?);
        }
        if now >= stop_sending {
            cpu_end = cpu_end.or(Some(process_cpu(relay_pid, tick)?));
            if now >= stop_sending + Duration::from_millis(300) {
                break;
            }
        } else {
            loop {
                let stream = (next % streams as u64) as usize;
                let round = next / streams as u64;
                let due = PTIME * round as u32 + spacing * stream as u32;
                if due > now {
                    break;
                }
                let (socket, to) = destinations[stream];
                let sent_ns = realtime_ns();
                write_packet(&mut packet, stream as u32, round as u32, sent_ns);
                let measured = (window.start_ns..window.end_ns).contains(&sent_ns);
                if socket.send_to(&packet, to).is_ok() && measured {
                    sent += 1;
                }
                next += 1;
            }
        }
        receive(side_a, &window, &mut tally)?;
        receive(side_b, &window, &mut tally)?;
        std::thread::sleep(Duration::from_micros(50));
    }
    tally.delays_ns.sort_unstable();
    let cpu = cpu_end.unwrap_or_default().saturating_sub(cpu_start.unwrap_or_default());
    Ok(Outcome {
        sent,
        received: tally.received,
        delays_ns: tally.delays_ns,
        relay_cpu: cpu,
        window: duration,
    })
}

fn write_packet(packet: &mut [u8; HEADER + PAYLOAD], stream: u32, round: u32, sent_ns: u64) {
    packet[0] = 0x80;
    packet[1] = 0; // PCMU
    packet[2..4].copy_from_slice(&(round as u16).to_be_bytes());
    packet[4..8].copy_from_slice(&(round.wrapping_mul(PAYLOAD as u32)).to_be_bytes());
    packet[8..12].copy_from_slice(&stream.to_be_bytes());
    packet[HEADER..HEADER + 8].copy_from_slice(&sent_ns.to_be_bytes());
}

/// Drains one socket without blocking, recording the delays of packets sent
/// inside the window.
fn receive(socket: &UdpSocket, window: &Window, tally: &mut Tally) -> anyhow::Result<()> {
    let mut bufs = [[0u8; 256]; BATCH];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec)));
    loop {
        let mut got = [(0usize, 0u64); BATCH];
        let count = {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            let results = match recvmmsg(socket.as_raw_fd(), &mut headers, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None) {
                Ok(r) => r,
                Err(nix::Error::EAGAIN) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let mut count = 0;
            for (slot, msg) in got.iter_mut().zip(results) {
                let stamp = msg
                    .cmsgs()?
                    .find_map(|c| match c {
                        ControlMessageOwned::ScmTimestampns(ts) => {
                            Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
                        }
                        _ => None,
                    })
                    .unwrap_or_else(realtime_ns);
                *slot = (msg.bytes, stamp);
                count += 1;
            }
            count
        };
        for (buf, &(len, arrived_ns)) in bufs.iter().zip(&got).take(count) {
            let Some(sent) = buf.get(HEADER..HEADER + 8).filter(|_| len >= HEADER + 8) else { continue };
            let sent_ns = u64::from_be_bytes(sent.try_into().unwrap_or_default());
            if (window.start_ns..window.end_ns).contains(&sent_ns) {
                tally.received += 1;
                tally.delays_ns.push(arrived_ns.saturating_sub(sent_ns));
            }
        }
        if count < BATCH {
            return Ok(());
        }
    }
}
