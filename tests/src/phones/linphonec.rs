//! linphonec 5.1 (Debian's linphone-cli) as a calling phone: its account written into its rc
//! file (UDP, or TLS checked against a CA file), audio from and to WAV files, commands on its
//! console. Tests use it as a caller.
use super::{Console, Event, Phone, PhoneConfig};
use crate::netns::Netns;
use std::path::{Path, PathBuf};

/// Where linphonec sends its RTP from and listens (outside the baresips' ranges, so a capture
/// tells the legs apart).
pub const LINPHONEC_RTP_PORT: u16 = 21100;

pub struct Linphonec {
    pub dir: PathBuf,
    calls: usize,
    console: Console,
}

impl Linphonec {
    /// Starts linphonec in `ns`, SIP on `c.addr`'s port, registering `c.user` at `c.registrar`
    /// (also its outbound proxy).
    pub fn start(ns: &Netns, dir: &Path, c: &PhoneConfig) -> Linphonec {
        Linphonec::start_with(ns, dir, c, None, "")
    }

    /// `start` (UDP) as a phone that requires SRTP (SDES, libsrtp2: `media_encryption=srtp`,
    /// mandatory) with AES_256_CM_HMAC_SHA1_80 alone (RFC 6188), and makes late offers
    /// (`sdp_200_ack`: its INVITE carries no SDP, it answers the offer in the 2xx in its ACK);
    /// its RTP on `LINPHONEC_RTP_PORT` as always.
    pub fn start_srtp_late_offer(ns: &Netns, dir: &Path, c: &PhoneConfig) -> Linphonec {
        let sip = "sdp_200_ack=1\nmedia_encryption=srtp\nmedia_encryption_mandatory=1\nsrtp_crypto_suites=AES_256_CM_HMAC_SHA1_80\n";
        Linphonec::start_with(ns, dir, c, None, sip)
    }

    /// `start` over TLS: `c.registrar` is a TLS listener whose certificate chains to `ca`.
    /// mbedtls 2.28 (its TLS) matches the host only against DNS names, and the appliance
    /// certificate names its IP addresses as IP entries, so the name check is off; with the
    /// appliance's own self-signed certificate as `ca`, the chain check alone pins that key.
    pub fn start_tls(ns: &Netns, dir: &Path, c: &PhoneConfig, ca: &Path) -> Linphonec {
        Linphonec::start_with(ns, dir, c, Some(ca), "")
    }

    /// `sip`: more lines of its [sip] section.
    fn start_with(ns: &Netns, dir: &Path, c: &PhoneConfig, tls_ca: Option<&Path>, sip: &str) -> Linphonec {
        let dir = dir.join(format!("linphonec-{}-{}", c.user, c.addr.port()));
        // Without its database directory its core never leaves startup: it opens no SIP socket
        // of its own and answers INVITEs 503.
        std::fs::create_dir_all(dir.join(".local/share/linphone")).expect("linphonec dir");
        let (transport, sockets) = match tls_ca {
            None => ("udp", format!("sip_port={}\n", c.addr.port())),
            Some(ca) => (
                "tls",
                format!(
                    "sip_port=-1\nsip_tcp_port=-1\nsip_tls_port={}\nroot_ca={}\nverify_server_certs=1\nverify_server_cn=0\n",
                    c.addr.port(),
                    ca.display()
                ),
            ),
        };
        let rc = dir.join("linphonerc");
        std::fs::write(
            &rc,
            format!(
                "[sip]\n{sockets}register_only_when_network_is_up=0\nregister_only_when_upnp_is_ok=0\n\
                 default_proxy=0\n{sip}\
                 [rtp]\naudio_rtp_port={LINPHONEC_RTP_PORT}\n\
                 [proxy_0]\nreg_proxy=<sip:{registrar};transport={transport}>\nreg_route=<sip:{registrar};transport={transport};lr>\n\
                 reg_identity=sip:{user}@{domain}\nreg_expires={expires}\nreg_sendregister=1\npublish=0\n\
                 [auth_info_0]\nusername={user}\npasswd={password}\ndomain={domain}\n",
                registrar = c.registrar,
                user = c.user,
                domain = c.domain,
                password = c.password,
                expires = c.expires,
            ),
        )
        .expect("linphonerc");
        let mut cmd = Console::command(ns, "linphonec");
        cmd.env("HOME", &dir).arg("-c").arg(&rc);
        let mut console = Console::start(cmd, &dir.join("console.log"), "linphonec (apt-get install linphone-cli)");
        console.send("soundcard use files");
        Linphonec { dir, calls: 0, console }
    }

    /// Once a call is connected: plays `tone` into it and records what it hears; returns the
    /// recording's path.
    pub fn play_and_record(&mut self, tone: &Path) -> PathBuf {
        self.calls += 1;
        let heard = self.dir.join(format!("heard-{}.wav", self.calls));
        self.console.send(&format!("play {}", tone.display()));
        self.console.send(&format!("record {}", heard.display()));
        heard
    }
}

impl Phone for Linphonec {
    fn terminal(&self) -> &Console {
        &self.console
    }

    fn reports(&self, event: Event) -> &'static [&'static str] {
        match event {
            Event::Incoming => &["is contacting you"],
            Event::Connected => &[" connected."],
            Event::Ended => &[" ended ("],
        }
    }

    fn dial(&mut self, target: &str) {
        self.console.send(&format!("call {target}"));
    }

    fn hang_up(&mut self) {
        self.console.send("terminate");
    }

    fn unregister(&mut self) {
        self.console.send("unregister");
    }
}
