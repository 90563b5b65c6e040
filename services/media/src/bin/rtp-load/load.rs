//! The load itself: G.711 20 ms streams in both directions through a relay,
//! each packet carrying its send time, received with kernel timestamps
//! (SO_TIMESTAMPNS) so the generator's own scheduling does not count as
//! relay delay. The send time (µs since the run started) rides in the RTP
//! timestamp field, which relays keep even when they transcode the payload.

use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{recvmmsg, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn};
use nix::sys::time::TimeSpec;

use holdfast_media::packet::PacketKind;
use holdfast_media::srtp::{LegCrypto, LegKeys, MasterKey};

const PTIME: Duration = Duration::from_millis(20);
const PAYLOAD: usize = 160;
const HEADER: usize = 12;
const BATCH: usize = 64;
/// One packet of a stream in this many (by sequence number) is decrypted and checked.
const CHECK_EVERY: u16 = 50;

/// Relay ports per call: where the A side and the B side send.
pub struct Target {
    pub relay_ip: IpAddr,
    pub calls: Vec<(u16, u16)>,
    /// Payload type the B side sends (0 PCMU, or 8 PCMA to make a
    /// transcoding relay convert both ways).
    pub b_payload_type: u8,
    /// SRTP on both legs: the A side's streams are sent encrypted under the first key, the B
    /// side's under the second (the relay's inbound keys). What comes back is read from its
    /// header, which SRTP leaves in clear.
    pub srtp: Option<(MasterKey, MasterKey)>,
    /// Per call, the keys the relay encrypts with towards the A side and the B side: one
    /// packet in `CHECK_EVERY` of each stream is decrypted under them, so a relay that
    /// forwarded SRTP untouched, or sent it plain, shows as `srtp_bad`.
    pub heard: Vec<(MasterKey, MasterKey)>,
}

pub struct Outcome {
    /// Packets sent inside the measured window.
    pub sent: u64,
    /// Of those, packets that came back through the relay.
    pub received: u64,
    /// Of those, packets whose payload type the relay changed (transcoded).
    pub rewritten: u64,
    /// One-way delays of the received ones, sorted, in nanoseconds.
    pub delays_ns: Vec<u64>,
    /// CPU time the relay process used during the window.
    pub relay_cpu: Duration,
    pub window: Duration,
    /// Sampled SRTP packets that decrypted under the relay's key to what was sent, and those
    /// that did not.
    pub srtp_ok: u64,
    pub srtp_bad: u64,
}

fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// utime + stime of `pid` from /proc/PID/stat; zero without a relay process.
pub fn process_cpu(pid: Option<u32>, tick: Duration) -> anyhow::Result<Duration> {
    let Some(pid) = pid else { return Ok(Duration::ZERO) };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; fields are counted after its ')'.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15; "state" (field 3) is index 0 here.
    Ok(tick * (ticks(11) + ticks(12)) as u32)
}

/// The measured part of the run, in µs since the run started.
struct Window {
    run_start_ns: u64,
    start_us: u32,
    end_us: u32,
}

struct Tally {
    received: u64,
    rewritten: u64,
    delays_ns: Vec<u64>,
    srtp_ok: u64,
    srtp_bad: u64,
}

/// Runs the load: `warmup`, then the measured `duration`, then a short drain.
pub fn run(
    side_a: &UdpSocket,
    side_b: &UdpSocket,
    target: &Target,
    warmup: Duration,
    duration: Duration,
    relay_pid: Option<u32>,
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
    let window = Window {
        run_start_ns: realtime_ns(),
        start_us: warmup.as_micros() as u32,
        end_us: (warmup + duration).as_micros() as u32,
    };
    let stop_sending = warmup + duration;
    let mut tally = Tally {
        received: 0,
        rewritten: 0,
        delays_ns: Vec::with_capacity((duration.as_secs_f64() / PTIME.as_secs_f64()) as usize * streams + 1),
        srtp_ok: 0,
        srtp_bad: 0,
    };
    // What each stream's receiver hears it under: A's streams go to B, B's to A.
    let mut checks: Vec<LegCrypto> = (0..streams)
        .filter_map(|stream| {
            let (to_a, to_b) = target.heard.get(stream % target.calls.len())?;
            let key = if stream < target.calls.len() { to_b } else { to_a };
            Some(LegCrypto::new(LegKeys { inbound: key.clone(), outbound: MasterKey::random(key.suite()) }))
        })
        .collect();
    let mut packet = [0xFFu8; HEADER + PAYLOAD];
    // One context a stream (its SSRC): the sender side of each leg's SRTP.
    let mut crypto: Vec<LegCrypto> = match &target.srtp {
        Some((a, b)) => (0..streams)
            .map(|stream| if stream < target.calls.len() { a } else { b })
            .map(|key| LegCrypto::new(LegKeys { inbound: MasterKey::random(key.suite()), outbound: key.clone() }))
            .collect(),
        None => Vec::new(),
    };
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
                let payload_type = if stream < target.calls.len() { 0 } else { target.b_payload_type };
                let sent_us = realtime_ns().saturating_sub(window.run_start_ns) / 1000;
                let sent_us = u32::try_from(sent_us).unwrap_or(u32::MAX);
                write_packet(&mut packet, payload_type, stream as u32, round as u16, sent_us);
                let measured = (window.start_us..window.end_us).contains(&sent_us);
                let sealed = match crypto.get_mut(stream) {
                    Some(c) => Some(c.protect(PacketKind::Rtp { payload_type }, &packet).map_err(|e| anyhow::anyhow!("SRTP: {e:?}"))?),
                    None => None,
                };
                if socket.send_to(sealed.as_deref().unwrap_or(&packet), to).is_ok() && measured {
                    sent += 1;
                }
                next += 1;
            }
        }
        // Side A hears what B sent, and B what A sent (always PCMU).
        receive(side_a, target.b_payload_type, &window, &mut checks, &mut tally)?;
        receive(side_b, 0, &window, &mut checks, &mut tally)?;
        std::thread::sleep(Duration::from_micros(50));
    }
    tally.delays_ns.sort_unstable();
    let cpu = cpu_end.unwrap_or_default().saturating_sub(cpu_start.unwrap_or_default());
    Ok(Outcome {
        sent,
        received: tally.received,
        rewritten: tally.rewritten,
        delays_ns: tally.delays_ns,
        relay_cpu: cpu,
        window: duration,
        srtp_ok: tally.srtp_ok,
        srtp_bad: tally.srtp_bad,
    })
}

fn write_packet(packet: &mut [u8; HEADER + PAYLOAD], payload_type: u8, stream: u32, round: u16, sent_us: u32) {
    packet[0] = 0x80;
    packet[1] = payload_type;
    packet[2..4].copy_from_slice(&round.to_be_bytes());
    packet[4..8].copy_from_slice(&sent_us.to_be_bytes());
    packet[8..12].copy_from_slice(&stream.to_be_bytes());
}

/// Drains one socket without blocking, recording the delays of packets sent
/// inside the window (and checking a sample of them under `checks`, by SSRC).
fn receive(socket: &UdpSocket, sent_payload_type: u8, window: &Window, checks: &mut [LegCrypto], tally: &mut Tally) -> anyhow::Result<()> {
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
            if len < HEADER {
                continue;
            }
            let sent_us = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            if (window.start_us..window.end_us).contains(&sent_us) {
                let sent_ns = window.run_start_ns + u64::from(sent_us) * 1000;
                tally.received += 1;
                tally.rewritten += u64::from(buf[1] & 0x7F != sent_payload_type);
                tally.delays_ns.push(arrived_ns.saturating_sub(sent_ns));
            }
            let sequence = u16::from_be_bytes([buf[2], buf[3]]);
            let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
            if let (0, Some(check)) = (sequence % CHECK_EVERY, checks.get_mut(ssrc as usize)) {
                let payload_type = buf[1] & 0x7F;
                match check.unprotect(PacketKind::Rtp { payload_type }, &buf[..len]) {
                    Ok(plain) if plain.get(HEADER..).is_some_and(|p| p.len() == PAYLOAD && p.iter().all(|&b| b == 0xFF)) => tally.srtp_ok += 1,
                    _ => tally.srtp_bad += 1,
                }
            }
        }
        if count < BATCH {
            return Ok(());
        }
    }
}
