//! Benchmark side of Holdfast's relay: allocates `--calls` sessions whose A
//! legs face the load generator's A socket and B legs its B socket, writes
//! the ports ("A-port B-port" per call, with SRTP also the keys the relay
//! encrypts with towards A and towards B, so the generator can check what it
//! hears) to `--ports-out`, then relays until killed. tests/bench/media pins it
//! to one core.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use holdfast_media::g711::{PT_PCMA, PT_PCMU};
use holdfast_media::srtp::{LegKeys, MasterKey, Suite};
use holdfast_media::{Relay, RelayConfig, RemoteMedia, Side};

#[derive(Parser)]
struct Args {
    /// Sessions (calls) to allocate.
    #[arg(long)]
    calls: usize,
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    #[arg(long, default_value_t = 20_000)]
    port_min: u16,
    #[arg(long, default_value_t = 29_999)]
    port_max: u16,
    /// The generator's A-side socket (SDP of every A leg).
    #[arg(long)]
    remote_a: SocketAddr,
    /// The generator's B-side socket (SDP of every B leg).
    #[arg(long)]
    remote_b: SocketAddr,
    /// Where to write the allocated ports.
    #[arg(long)]
    ports_out: PathBuf,
    /// A legs negotiate PCMU and B legs PCMA, so every packet is transcoded.
    #[arg(long)]
    transcode: bool,
    /// SRTP on both legs: what the generator sends is decrypted under this key
    /// (AES_CM_128_HMAC_SHA1_80, base64), what the relay sends on is encrypted under a key of its own.
    #[arg(long)]
    srtp_key: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let relay = Relay::start(RelayConfig {
        bind_ip: args.bind,
        ports: args.port_min..=args.port_max,
    })?;
    let srtp = args
        .srtp_key
        .as_deref()
        .map(|k| MasterKey::from_base64(Suite::AesCm128HmacSha1_80, k))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--srtp-key: {e}"))?;
    let mut lines = String::new();
    for _ in 0..args.calls {
        let alloc = relay.allocate(std::time::Instant::now())?;
        let leg = |at, law| RemoteMedia {
            audio_pt: args.transcode.then_some(law),
            ..RemoteMedia::at(at)
        };
        relay.set_remote(alloc.id, Side::A, leg(args.remote_a, PT_PCMU))?;
        relay.set_remote(alloc.id, Side::B, leg(args.remote_b, PT_PCMA))?;
        lines.push_str(&format!("{} {}", alloc.a.rtp.port(), alloc.b.rtp.port()));
        if let Some(key) = &srtp {
            for side in [Side::A, Side::B] {
                let keys = LegKeys { inbound: key.clone(), outbound: MasterKey::random(key.suite()) };
                lines.push_str(&format!(" {}", keys.outbound.to_base64().as_str()));
                relay.set_crypto(alloc.id, side, Some(keys))?;
            }
        }
        lines.push('\n');
    }
    // Written then renamed, so the script never reads half a file.
    let tmp = args.ports_out.with_extension("tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(lines.as_bytes()))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.ports_out)?;
    loop {
        std::thread::park();
    }
}
