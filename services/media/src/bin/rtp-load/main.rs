//! Load generator for tests/bench/media: N calls of G.711 20 ms streams in
//! both directions through a relay (Holdfast's, from a ports file written by
//! rtp-relay-bench, or rtpengine, allocated over its ng protocol). Prints
//! one line of key=value results: loss, one-way delay p50/p99/max, and the
//! relay's CPU time per relayed packet.
#![forbid(unsafe_code)]

mod bencode;
mod load;
mod ng;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use holdfast_media::srtp::MasterKey;
use nix::sys::socket::{setsockopt, sockopt};

#[derive(Parser)]
struct Args {
    /// Calls to load (with --rtpengine; a ports file gives its own count).
    #[arg(long)]
    calls: Option<usize>,
    /// Holdfast: the "A-port B-port" lines rtp-relay-bench wrote.
    #[arg(long, conflicts_with = "rtpengine")]
    ports: Option<PathBuf>,
    /// rtpengine's ng control address.
    #[arg(long)]
    rtpengine: Option<SocketAddr>,
    #[arg(long, default_value = "127.0.0.1")]
    relay_ip: IpAddr,
    /// The generator's A-side socket.
    #[arg(long, default_value = "127.0.0.1:19000")]
    side_a: SocketAddr,
    /// The generator's B-side socket.
    #[arg(long, default_value = "127.0.0.1:19002")]
    side_b: SocketAddr,
    /// The relay's process, whose CPU time is read from /proc.
    #[arg(long, required_unless_present = "direct")]
    pid: Option<u32>,
    /// No relay: each side sends straight to the other, the baseline that
    /// relay delays are compared with.
    #[arg(long, conflicts_with_all = ["ports", "rtpengine"])]
    direct: bool,
    /// Payload type of the B side's packets: 8 (PCMA) against a relay that
    /// transcodes (rtp-relay-bench --transcode).
    #[arg(long, default_value_t = 0)]
    b_payload_type: u8,
    /// SRTP on both legs (rtp-relay-bench --srtp-key with the same key): AES_CM_128_HMAC_SHA1_80
    /// key and salt in base64. With rtpengine, keyed by SDES: the caller's side sends under it
    /// as AES_CM_128_HMAC_SHA1_80, the callee's as AES_CM_128_HMAC_SHA1_32 (see ng.rs).
    #[arg(long, conflicts_with = "direct")]
    srtp_key: Option<String>,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
}

fn socket(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    let s = UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?;
    // 1,200 calls burst more than the default 208 KiB between two drains.
    setsockopt(&s, sockopt::RcvBufForce, &(32 << 20)).or_else(|_| setsockopt(&s, sockopt::RcvBuf, &(8 << 20)))?;
    setsockopt(&s, sockopt::ReceiveTimestampns, &true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let side_a = socket(args.side_a)?;
    let side_b = socket(args.side_b)?;
    let mut rtpengine = None;
    let (calls, heard): (Vec<(u16, u16)>, Vec<(MasterKey, MasterKey)>) = match (&args.ports, args.rtpengine) {
        (Some(path), _) => {
            let lines = std::fs::read_to_string(path)?;
            let mut calls = Vec::new();
            let mut heard = Vec::new();
            for line in lines.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                let port = |i: usize| f.get(i).and_then(|p| p.parse().ok()).context("ports file: A-port B-port per line");
                calls.push((port(0)?, port(1)?));
                if let [_, _, a, b] = f[..] {
                    let key = |k| MasterKey::from_base64(ng::CALLER_SUITE, k).map_err(|e| anyhow::anyhow!("ports file key: {e}"));
                    heard.push((key(a)?, key(b)?));
                }
            }
            (calls, heard)
        }
        (None, Some(server)) => {
            let mut ng = ng::NgClient::connect(server)?;
            let n = args.calls.context("--calls is needed with --rtpengine")?;
            let calls = (0..n)
                .map(|i| ng.allocate(&format!("bench-{i}"), args.side_a, args.side_b, args.srtp_key.as_deref()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            rtpengine = Some((ng, n));
            let ports = calls.iter().map(|c| c.ports).collect();
            (ports, calls.into_iter().filter_map(|c| c.heard).collect())
        }
        (None, None) if args.direct => {
            let n = args.calls.context("--calls is needed with --direct")?;
            (vec![(args.side_b.port(), args.side_a.port()); n], Vec::new())
        }
        (None, None) => anyhow::bail!("give --ports, --rtpengine or --direct"),
    };
    anyhow::ensure!(
        args.srtp_key.is_none() || heard.len() == calls.len(),
        "--srtp-key: the relay's keys towards the generator are missing (ports file or rtpengine's SDP)"
    );
    let tick = Duration::from_secs(1)
        / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(100);
    let target = load::Target {
        relay_ip: if args.direct { args.side_b.ip() } else { args.relay_ip },
        calls,
        b_payload_type: args.b_payload_type,
        heard,
        srtp: args
            .srtp_key
            .as_deref()
            .map(|k| {
                let b = if args.rtpengine.is_some() { ng::CALLEE_SUITE } else { ng::CALLER_SUITE };
                Ok::<_, holdfast_media::srtp::KeyError>((MasterKey::from_base64(ng::CALLER_SUITE, k)?, MasterKey::from_base64(b, k)?))
            })
            .transpose()
            .map_err(|e| anyhow::anyhow!("--srtp-key: {e}"))?,
    };
    let outcome = load::run(
        &side_a,
        &side_b,
        &target,
        Duration::from_secs(args.warmup_seconds),
        Duration::from_secs(args.seconds),
        args.pid,
        tick,
    );
    if let Some((mut ng, n)) = rtpengine {
        for i in 0..n {
            ng.delete(&format!("bench-{i}"))?;
        }
    }
    let o = outcome?;
    let pct = |p: f64| {
        let i = ((o.delays_ns.len() as f64 * p) as usize).min(o.delays_ns.len().saturating_sub(1));
        o.delays_ns.get(i).map_or(f64::NAN, |&ns| ns as f64 / 1000.0)
    };
    let loss = if o.sent == 0 { 1.0 } else { 1.0 - o.received as f64 / o.sent as f64 };
    let cpu_per_packet = o.relay_cpu.as_secs_f64() * 1e6 / o.received.max(1) as f64;
    println!(
        "calls={} sent={} received={} rewritten={} loss={:.5} p50_us={:.0} p99_us={:.0} max_us={:.0} pps={:.0} relay_cpu_s={:.2} cpu_us_per_pkt={:.2} srtp_ok={} srtp_bad={}",
        target.calls.len(),
        o.sent,
        o.received,
        o.rewritten,
        loss.max(0.0),
        pct(0.50),
        pct(0.99),
        pct(1.0),
        o.received as f64 / o.window.as_secs_f64(),
        o.relay_cpu.as_secs_f64(),
        cpu_per_packet,
        o.srtp_ok,
        o.srtp_bad,
    );
    Ok(())
}
