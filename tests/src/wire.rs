//! What went over the wire in a test's namespace: a watcher (python3 on an AF_PACKET socket on
//! the namespace's loopback) writes every UDP datagram to or from the ports it is given, and the
//! test reads them back: SIP as text, RTP as G.711 whose tones can be looked for, so a test can
//! show which leg of a call carried audio in the clear and which only ciphertext.
use crate::audio;
use crate::netns::Netns;
use crate::wait::wait_until;
use holdfast_media::g711;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// G.711 at 20 ms: the payload of one packet, before any SRTP auth tag.
pub const FRAME: usize = 160;

/// Python for a test's sniffer on the namespace's loopback (AF_PACKET): `sniffer(timeout)`
/// opens it, `next_udp(sniff)` is the next IPv4 UDP datagram arriving there, as (IP packet,
/// IP header length, source port, destination port, UDP length), None on a timeout or anything
/// else. `script` puts it ahead of a script's own lines.
const SNIFF: &str = r#"
import os, socket, struct, sys, time
def sniffer(timeout):
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    sniff.bind(("lo", 0))
    sniff.settimeout(timeout)
    return sniff
def next_udp(sniff):
    try:
        frame, (_, _, kind, _, _) = sniff.recvfrom(65535)
    except socket.timeout:
        return None
    ip = frame[14:]
    if kind == socket.PACKET_OUTGOING or len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    ihl = (ip[0] & 15) * 4
    sport, dport, length = struct.unpack("!HHH", ip[ihl:ihl + 6])
    return ip, ihl, sport, dport, length
"#;

/// `body` (python) after `SNIFF`: a script for `python3 -c`.
pub fn script(body: &str) -> String {
    format!("{SNIFF}{body}")
}

/// The watcher: argv[1] is the output file, argv[2] a file whose existence stops it (30 s at
/// most), the rest port ranges "LOW-HIGH"; every UDP datagram on lo with either port in one of
/// them is written as a line: seconds since start, source port, destination port, payload in hex.
const WATCHER: &str = r#"
out, stop = sys.argv[1], sys.argv[2]
ranges = [tuple(int(p) for p in r.split("-")) for r in sys.argv[3:]]
watched = lambda port: any(lo <= port <= hi for lo, hi in ranges)
sniff = sniffer(0.05)
log = open(out, "w")
start = time.monotonic()
print("watching", flush=True)
while time.monotonic() - start < 30 and not os.path.exists(stop):
    got = next_udp(sniff)
    if got is None:
        continue
    ip, ihl, sport, dport, length = got
    if watched(sport) or watched(dport):
        log.write("%.3f %d %d %s\n" % (time.monotonic() - start, sport, dport, ip[ihl + 8:ihl + length].hex()))
log.close()
"#;

/// `WATCHER` running in a test's namespace until `stop`.
pub struct Watcher {
    child: Child,
    capture: PathBuf,
    stop: PathBuf,
}

impl Watcher {
    /// Starts it in `ns` on the port `ranges` ("LOW-HIGH"), its files in `dir`; returns once it
    /// watches. Left running (a test that failed first), it stops by itself after 30 s.
    pub fn start(ns: &Netns, dir: &Path, ranges: &[&str]) -> Watcher {
        let (capture, stop) = (dir.join("wire.txt"), dir.join("wire.stop"));
        let child = ns
            .command("python3")
            .args(["-c", &script(WATCHER)])
            .args([&capture, &stop])
            .args(ranges)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 (apt-get install python3)");
        wait_until("the watcher is up", Duration::from_secs(15), || capture.exists());
        Watcher { child, capture, stop }
    }

    /// Stops it; what it saw.
    pub fn stop(mut self) -> Vec<Seen> {
        std::fs::write(&self.stop, "").expect("the watcher's stop file");
        assert!(self.child.wait().expect("the watcher").success(), "the watcher failed");
        read(&self.capture)
    }
}

/// One UDP datagram the watcher saw.
pub struct Seen {
    pub at: f64,
    pub from: u16,
    pub to: u16,
    pub udp: Vec<u8>,
}

impl Seen {
    pub fn parse(line: &str) -> Option<Seen> {
        let mut f = line.split(' ');
        let (at, from, to, hex) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?, f.next()?);
        let udp = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect::<Option<Vec<u8>>>()?;
        Some(Seen { at, from, to, udp })
    }

    /// The payload type and payload of an RTP packet of G.711 (RFC 3550 header: version 2, CSRCs
    /// and extension skipped); None for RTCP and anything else.
    pub fn g711(&self) -> Option<(u8, &[u8])> {
        let b = &self.udp;
        if b.len() < 12 || b[0] >> 6 != 2 || !matches!(b[1] & 0x7F, 0 | 8) {
            return None;
        }
        let mut at = 12 + 4 * usize::from(b[0] & 0x0F);
        if b[0] & 0x10 != 0 {
            let words = u16::from_be_bytes([*b.get(at + 2)?, *b.get(at + 3)?]);
            at += 4 + 4 * usize::from(words);
        }
        Some((b[1] & 0x7F, b.get(at..)?))
    }

    /// The share of the first 20 ms of the payload's energy, read as G.711 audio, that lies at
    /// `hz` (a clean tone about 0.5; noise, such as ciphertext, about 1/160).
    pub fn tone_share(&self, hz: u32) -> f64 {
        let Some((pt, payload)) = self.g711() else { return 0.0 };
        let Some(frame) = payload.get(..FRAME) else { return 0.0 };
        let samples: Vec<i16> =
            frame.iter().map(|&c| if pt == 0 { g711::ulaw_to_linear(c) } else { g711::alaw_to_linear(c) }).collect();
        let power = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64;
        let level = audio::level(&samples, audio::RATE, f64::from(hz));
        if power > 0.0 {
            level * level / power
        } else {
            0.0
        }
    }

    /// The datagram as text (SIP).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.udp).into_owned()
    }
}

/// What the watcher wrote to `path`.
pub fn read(path: &Path) -> Vec<Seen> {
    std::fs::read_to_string(path).expect("the watcher's capture").lines().filter_map(Seen::parse).collect()
}

/// The RTP packets (G.711) from ports in `from` to ports in `to`.
pub fn flow<'a>(seen: &'a [Seen], from: &RangeInclusive<u16>, to: &RangeInclusive<u16>) -> Vec<&'a Seen> {
    seen.iter().filter(|s| from.contains(&s.from) && to.contains(&s.to) && s.g711().is_some()).collect()
}

/// How many of `packets` hold `hz` as plain G.711.
pub fn with_tone(packets: &[&Seen], hz: u32) -> usize {
    packets.iter().filter(|s| s.tone_share(hz) > 0.25).count()
}

/// Whether every one of `packets` carries more than a G.711 frame (an SRTP auth tag: 4 or 10
/// octets after the 160).
pub fn all_tagged(packets: &[&Seen]) -> bool {
    packets.iter().all(|s| s.g711().is_some_and(|(_, p)| p.len() >= FRAME + 4))
}

impl Seen {
    /// RTCP (payload types 200-204), plain or SRTCP: the header and sender SSRC are in clear.
    pub fn is_rtcp(&self) -> bool {
        self.udp.len() >= 8 && self.udp[0] >> 6 == 2 && (200..=204).contains(&self.udp[1])
    }

    /// The RTCP sender's SSRC.
    pub fn rtcp_ssrc(&self) -> Option<u32> {
        self.is_rtcp().then(|| u32::from_be_bytes([self.udp[4], self.udp[5], self.udp[6], self.udp[7]]))
    }

    /// RTCP in the clear: its packets' lengths add up to the datagram.
    pub fn is_plain_rtcp(&self) -> bool {
        let mut at = 0;
        while at + 4 <= self.udp.len() && self.udp[at] >> 6 == 2 {
            at += 4 + 4 * usize::from(u16::from_be_bytes([self.udp[at + 2], self.udp[at + 3]]));
        }
        self.is_rtcp() && at == self.udp.len()
    }

    /// SRTCP with HMAC-SHA1 (RFC 3711 §3.4): one packet's length, then the E flag set with the
    /// index, and the 80-bit tag.
    pub fn is_srtcp(&self) -> bool {
        let first = 4 + 4 * usize::from(u16::from_be_bytes([self.udp[2], self.udp[3]]));
        self.is_rtcp() && self.udp.len() == first + 4 + 10 && self.udp[first] & 0x80 != 0
    }
}

/// The RTCP datagrams from ports in `from` to ports in `to`.
pub fn rtcp<'a>(seen: &'a [Seen], from: &RangeInclusive<u16>, to: &RangeInclusive<u16>) -> Vec<&'a Seen> {
    seen.iter().filter(|s| from.contains(&s.from) && to.contains(&s.to) && s.is_rtcp()).collect()
}
