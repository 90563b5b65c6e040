//! twinkle 1.10's console (`twinkle-console`, Debian's twinkle-console) as a phone: its profile
//! and system settings written into `$HOME/.twinkle` of a directory of its own, registration at
//! startup, calls answered automatically, commands on its console.
use super::{Console, Event, Phone, PhoneConfig};
use crate::netns::Netns;
use std::path::{Path, PathBuf};

pub struct Twinkle {
    pub dir: PathBuf,
    console: Console,
}

impl Twinkle {
    /// Starts twinkle in `ns`, SIP on `c.addr`'s port (it binds every address of the
    /// namespace), RTP on `rtp_port`, registering `c.user` at `c.registrar`.
    pub fn start(ns: &Netns, dir: &Path, c: &PhoneConfig, rtp_port: u16) -> Twinkle {
        let dir = dir.join(format!("twinkle-{}-{}", c.user, c.addr.port()));
        let settings = dir.join(".twinkle");
        std::fs::create_dir_all(&settings).expect("twinkle dir");
        // No sound card here: ALSA's null device (silence out, nothing heard).
        std::fs::write(
            settings.join("twinkle.sys"),
            format!(
                "dev_ringtone=alsa:null\ndev_speaker=alsa:null\ndev_mic=alsa:null\nvalidate_audio_dev=no\n\
                 sip_port={}\nrtp_port={rtp_port}\nplay_ringtone=no\nplay_ringback=no\nlog_show_sip=yes\n",
                c.addr.port()
            ),
        )
        .expect("twinkle.sys");
        // registrar and outbound_proxy are host:port: a `sip:` prefix is taken as a host name.
        std::fs::write(
            settings.join(format!("{}.cfg", c.user)),
            format!(
                "user_name={user}\nuser_domain={domain}\nauth_name={user}\nauth_pass={password}\n\
                 registrar={registrar}\noutbound_proxy={registrar}\nall_requests_to_proxy=yes\n\
                 registration_time={expires}\nregister_at_startup=yes\ncodecs=g711u,g711a\n",
                user = c.user,
                domain = c.domain,
                password = c.password,
                registrar = c.registrar,
                expires = c.expires,
            ),
        )
        .expect("twinkle profile");
        let mut cmd = Console::command(ns, "twinkle-console");
        cmd.env("HOME", &dir).arg(format!("{}.cfg", c.user));
        let mut console = Console::start(cmd, &dir.join("console.log"), "twinkle-console (apt-get install twinkle-console)");
        console.send("auto_answer -a on");
        Twinkle { dir, console }
    }
}

impl Phone for Twinkle {
    fn terminal(&self) -> &Console {
        &self.console
    }

    fn reports(&self, event: Event) -> &'static [&'static str] {
        match event {
            Event::Incoming => &["incoming call"],
            // Placed and answered by the far end; taken (auto answer).
            Event::Connected => &["far end answered call", "call established"],
            // Hung up here; by the far end.
            Event::Ended => &["call ended", "far end ended call"],
        }
    }

    fn dial(&mut self, target: &str) {
        self.console.send(&format!("call {target}"));
    }

    fn hang_up(&mut self) {
        self.console.send("bye");
    }

    fn unregister(&mut self) {
        self.console.send("deregister");
    }
}
