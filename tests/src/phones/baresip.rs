//! baresip 1.0 as a phone: registers (digest), answers calls automatically, and dials or hangs
//! up on command (its stdio console).
use super::{Console, Event, Phone, PhoneConfig};
use crate::netns::Netns;
use holdfast_sip::transport::Protocol;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a baresip phone sends, and whether it keeps what it hears.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BaresipAudio {
    /// It sends back what it hears (aubridge joins its player to its source).
    Echo,
    /// It sends a sine at this frequency and keeps each call's received audio in a WAV file.
    Tone(u32),
}

/// The RTP ports of phones (`start*`) and of carriers (`start_srtp_carrier`): apart, so a test
/// watching the wire tells the two legs of a call through the relay by port.
pub const PHONE_RTP_PORTS: RangeInclusive<u16> = 20000..=20999;
pub const CARRIER_RTP_PORTS: RangeInclusive<u16> = 22000..=22999;

/// Where a baresip runs and who it is.
struct Launch<'a> {
    dir: PathBuf,
    addr: SocketAddr,
    aor: String,
    /// Its line in the accounts file.
    account: String,
    rtp_ports: RangeInclusive<u16>,
    /// More config lines.
    extra: &'a str,
}

pub struct Baresip {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    aor: String,
    console: Console,
}

impl Baresip {
    /// Starts baresip in `ns` for at most `lifetime_s` seconds, registering `c.user` through
    /// `c.registrar` every `c.refresh` (at least 1 s, baresip's granularity is seconds); it
    /// echoes what it hears.
    pub fn start(ns: &Netns, dir: &Path, c: &PhoneConfig, lifetime_s: u32) -> Baresip {
        Baresip::start_with(ns, dir, c, lifetime_s, BaresipAudio::Echo, Protocol::Udp)
    }

    /// `start` with the audio given, registering (and calling) over `transport`.
    pub fn start_with(
        ns: &Netns,
        dir: &Path,
        c: &PhoneConfig,
        lifetime_s: u32,
        audio: BaresipAudio,
        transport: Protocol,
    ) -> Baresip {
        Baresip::start_configured(ns, dir, c, lifetime_s, audio, transport, "", "")
    }

    /// `start_with` (UDP) with SRTP required on every call (`mediaenc=srtp-mand`: RTP/SAVP with
    /// SDES keys, a plain answer fails the call).
    pub fn start_srtp(ns: &Netns, dir: &Path, c: &PhoneConfig, lifetime_s: u32, audio: BaresipAudio) -> Baresip {
        Baresip::start_configured(ns, dir, c, lifetime_s, audio, Protocol::Udp, "module srtp.so\n", ";mediaenc=srtp-mand")
    }

    /// `start` over TLS to `c.registrar` (the TLS listener), trusting the certificate in `ca`.
    /// baresip listens for TLS on its SIP port + 1.
    pub fn start_tls(ns: &Netns, dir: &Path, c: &PhoneConfig, lifetime_s: u32, ca: &Path) -> Baresip {
        let extra = format!("sip_cafile {}\n", ca.display());
        Baresip::start_configured(ns, dir, c, lifetime_s, BaresipAudio::Echo, Protocol::Tls, &extra, "")
    }

    /// `start_tls` asking for RFC 5626 outbound (`sipnat=outbound`: `+sip.instance`, `reg-id`,
    /// `Supported: outbound`, keepalives on its flow).
    pub fn start_tls_outbound(ns: &Netns, dir: &Path, c: &PhoneConfig, lifetime_s: u32, ca: &Path) -> Baresip {
        let extra = format!("sip_cafile {}\n", ca.display());
        Baresip::start_configured(ns, dir, c, lifetime_s, BaresipAudio::Echo, Protocol::Tls, &extra, ";sipnat=outbound")
    }

    /// `start_tls` with SRTP required on every call (`mediaenc=srtp-mand`) and the audio given.
    pub fn start_tls_srtp(ns: &Netns, dir: &Path, c: &PhoneConfig, lifetime_s: u32, ca: &Path, audio: BaresipAudio) -> Baresip {
        let extra = format!("sip_cafile {}\nmodule srtp.so\n", ca.display());
        Baresip::start_configured(ns, dir, c, lifetime_s, audio, Protocol::Tls, &extra, ";mediaenc=srtp-mand")
    }

    #[allow(clippy::too_many_arguments)]
    fn start_configured(
        ns: &Netns,
        dir: &Path,
        c: &PhoneConfig,
        lifetime_s: u32,
        audio: BaresipAudio,
        transport: Protocol,
        extra: &str,
        account_params: &str,
    ) -> Baresip {
        let regint = c.refresh.as_secs().max(1);
        let aor = format!("sip:{}@{}", c.user, c.domain);
        let account = format!(
            "<{aor}>;auth_pass={};outbound=\"sip:{};transport={}\";regint={regint};answermode=auto{account_params}\n",
            c.password,
            c.registrar,
            transport.as_str().to_ascii_lowercase()
        );
        let dir = dir.join(format!("baresip-{}-{}", c.user, c.addr.port()));
        Baresip::launch(ns, Launch { dir, addr: c.addr, aor, account, rtp_ports: PHONE_RTP_PORTS, extra }, lifetime_s, audio)
    }

    /// A carrier's SIP peer for trunk tests: baresip on `addr`, registering nowhere, answering
    /// every call to `number` (baresip finds the account by the Request-URI's user) with SRTP
    /// required (`mediaenc=srtp-mand`), its RTP from `CARRIER_RTP_PORTS`.
    pub fn start_srtp_carrier(ns: &Netns, dir: &Path, addr: SocketAddr, number: &str, lifetime_s: u32, audio: BaresipAudio) -> Baresip {
        Baresip::start_carrier(ns, dir, addr, number, lifetime_s, audio, true, CARRIER_RTP_PORTS)
    }

    /// `start_srtp_carrier`, with SRTP required or plain RTP only, its RTP from `rtp_ports`
    /// (a second carrier's apart from the first's).
    #[allow(clippy::too_many_arguments)]
    pub fn start_carrier(
        ns: &Netns,
        dir: &Path,
        addr: SocketAddr,
        number: &str,
        lifetime_s: u32,
        audio: BaresipAudio,
        srtp: bool,
        rtp_ports: RangeInclusive<u16>,
    ) -> Baresip {
        let aor = format!("sip:{number}@{addr}");
        let mediaenc = if srtp { ";mediaenc=srtp-mand" } else { "" };
        let account = format!("<{aor}>;regint=0;answermode=auto{mediaenc}\n");
        let dir = dir.join(format!("baresip-carrier-{}", addr.port()));
        let extra = if srtp { "module srtp.so\n" } else { "" };
        Baresip::launch(ns, Launch { dir, addr, aor, account, rtp_ports, extra }, lifetime_s, audio)
    }

    fn launch(ns: &Netns, l: Launch, lifetime_s: u32, audio: BaresipAudio) -> Baresip {
        let Launch { dir, addr, aor, account, rtp_ports, extra } = l;
        std::fs::create_dir_all(&dir).expect("baresip dir");
        let audio_config = match audio {
            BaresipAudio::Echo => "module aubridge.so\naudio_source aubridge,holdfast\naudio_player aubridge,holdfast\n\
                                  audio_alert aubridge,holdfast\n"
                .to_string(),
            // ausine makes 48 kHz stereo only; sndfile writes what is sent and heard per call,
            // into baresip's working directory (`dir`): sndfile cuts its file names at 128 bytes,
            // and a fresh clone's scratch path left "…-dec" without its ".wav".
            BaresipAudio::Tone(hz) => format!(
                "module ausine.so\nmodule aubridge.so\nmodule sndfile.so\naudio_source ausine,{hz}\n\
                 ausrc_srate 48000\nausrc_channels 2\naudio_player aubridge,nowhere\naudio_alert aubridge,nowhere\n\
                 snd_path .\n"
            ),
        };
        // RFC 5626 outbound needs the instance's UUID (uuid.so keeps one in `dir`) before the
        // accounts are read.
        let uuid = if account.contains("sipnat=outbound") { "module uuid.so\n" } else { "" };
        let config = format!(
            "sip_listen {addr}\nmodule_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\n{audio_config}\
             {uuid}module_app account.so\nmodule_app menu.so\nrtp_ports {}-{}\n{extra}",
            rtp_ports.start(),
            rtp_ports.end()
        );
        std::fs::write(dir.join("config"), config).expect("baresip config");
        std::fs::write(dir.join("accounts"), account).expect("baresip accounts");
        let mut cmd = Console::command(ns, "baresip");
        cmd.current_dir(&dir).args(["-f", ".", "-t", &lifetime_s.to_string()]);
        let console = Console::start(cmd, &dir.join("console.log"), "baresip (apt-get install baresip)");
        Baresip { addr, dir, aor, console }
    }

    /// A console command such as `/dial sip:bob@example` or `/hangup`.
    pub fn command(&mut self, line: &str) {
        self.console.send(line);
    }

    /// Everything baresip printed so far.
    pub fn console(&self) -> String {
        self.console.text()
    }

    /// Waits until the console has printed `needle` more than `before` times, at most `within`.
    pub fn wait_for(&self, needle: &str, before: usize, within: Duration) -> bool {
        self.console.wait_for(needle, before, within)
    }

    /// The audio received in the latest call (with `BaresipAudio::Tone`), as sndfile wrote it.
    pub fn heard(&self) -> Option<PathBuf> {
        let mut dumps: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        // Named dump-YYYY-MM-DD-hh-mm-ss-dec.wav: the last in order is the latest.
        dumps.sort();
        dumps.pop()
    }
}

impl Phone for Baresip {
    fn terminal(&self) -> &Console {
        &self.console
    }

    fn reports(&self, event: Event) -> &'static [&'static str] {
        match event {
            Event::Incoming => &["Incoming call from"],
            Event::Connected => &["Call established"],
            Event::Ended => &[" terminated (duration"],
        }
    }

    fn dial(&mut self, target: &str) {
        self.console.send(&format!("/dial {target}"));
    }

    fn hang_up(&mut self) {
        self.console.send("/hangup");
    }

    fn unregister(&mut self) {
        // baresip 1.0 has no unregister command: deleting the account unregisters it.
        let line = format!("/uadel {}", self.aor);
        self.console.send(&line);
    }
}
