//! linphonec 5.1 (Debian's linphone-cli) as a calling phone: its account written into its rc
//! file, audio from and to WAV files, commands on its console. It takes no calls (its core
//! stays in startup and answers INVITEs 503), so tests use it as a caller.
use super::{Console, Event, Phone, PhoneConfig};
use crate::netns::Netns;
use std::path::{Path, PathBuf};

pub struct Linphonec {
    pub dir: PathBuf,
    calls: usize,
    console: Console,
}

impl Linphonec {
    /// Starts linphonec in `ns`, SIP on `c.addr`'s port, registering `c.user` at `c.registrar`
    /// (also its outbound proxy).
    pub fn start(ns: &Netns, dir: &Path, c: &PhoneConfig) -> Linphonec {
        let dir = dir.join(format!("linphonec-{}-{}", c.user, c.addr.port()));
        std::fs::create_dir_all(&dir).expect("linphonec dir");
        let rc = dir.join("linphonerc");
        std::fs::write(
            &rc,
            format!(
                "[sip]\nsip_port={port}\nregister_only_when_network_is_up=0\nregister_only_when_upnp_is_ok=0\n\
                 default_proxy=0\n\
                 [proxy_0]\nreg_proxy=<sip:{registrar};transport=udp>\nreg_route=<sip:{registrar};transport=udp;lr>\n\
                 reg_identity=sip:{user}@{domain}\nreg_expires={expires}\nreg_sendregister=1\npublish=0\n\
                 [auth_info_0]\nusername={user}\npasswd={password}\ndomain={domain}\n",
                port = c.addr.port(),
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
        // Without this its core opens no SIP socket (and so never registers).
        console.send(&format!("ports sip {}", c.addr.port()));
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
