//! The appliance as `image/run-local` runs it: sba-registrar, sba-mediation and sba-gateway
//! started without `--config`, on their embedded defaults (127.0.0.1:5060, :5070, :5080,
//! ./var/sba.db, the simulated span and its simulated PSTN exchange), in a directory of their
//! own, inside a namespace of their own so that those fixed ports meet nothing else here.
use crate::bins::bin;
use crate::netns::{KillOnDrop, Island, Netns};
use crate::phones::PhoneConfig;
use crate::sip_probe::wait_ready_from;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// The registrar of the embedded default: where phones register and call.
pub const REGISTRAR: &str = "127.0.0.1:5060";
/// The SIP domain of the embedded default.
pub const DOMAIN: &str = "branch.local";
const SERVICES: [&str; 3] = ["sba-registrar", "sba-mediation", "sba-gateway"];

pub struct LocalAppliance {
    pub island: Island,
    /// The working directory (image/run-local's is the repository root): var/ and the logs.
    pub dir: PathBuf,
    services: Vec<(&'static str, KillOnDrop)>,
}

impl LocalAppliance {
    /// sba-mediation's RTP counters as its status snapshot (rewritten every second) has them.
    pub fn rtp_counters(&self) -> serde_json::Value {
        let text = std::fs::read(self.dir.join("var/sba.db.mediation.json")).unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&text).map(|v| v["rtp"].clone()).unwrap_or_default()
    }

    /// Starts the three services in `dir` and waits until the registrar answers and the
    /// gateway's simulated span is in service.
    pub fn start(dir: &Path) -> LocalAppliance {
        LocalAppliance::start_configured(dir, &[])
    }

    /// `start`, with the services named in `configs` started on that config file instead.
    pub fn start_configured(dir: &Path, configs: &[(&str, &Path)]) -> LocalAppliance {
        let mut appliance = LocalAppliance { island: Island::new(), dir: dir.to_path_buf(), services: Vec::new() };
        for name in SERVICES {
            let config = configs.iter().find(|(n, _)| *n == name).map(|(_, path)| *path);
            appliance.spawn(name, config);
        }
        appliance.wait_registrar();
        assert!(
            appliance.wait_log("sba-gateway", "trunk in service", Duration::from_secs(20)),
            "sba-gateway's simulated span never came into service: {}",
            appliance.log("sba-gateway")
        );
        appliance
    }

    pub fn ns(&self) -> &Netns {
        &self.island.ns
    }

    pub fn registrar_addr() -> SocketAddr {
        REGISTRAR.parse().expect("registrar address")
    }

    /// A phone at 127.0.0.1:`port` registering as `user` here for `expires` seconds, again
    /// only when they are over.
    pub fn phone<'a>(user: &'a str, password: &'a str, port: u16, expires: u32) -> PhoneConfig<'a> {
        PhoneConfig {
            user,
            password,
            domain: DOMAIN,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            registrar: Self::registrar_addr(),
            expires,
            refresh: Duration::from_secs(expires.into()),
        }
    }

    fn spawn(&mut self, name: &'static str, config: Option<&Path>) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .expect("service log");
        let child = self
            .island
            .ns
            .command(&bin(name).to_string_lossy())
            .args(config.map(|path| ["--config".as_ref(), path.as_os_str()]).into_iter().flatten())
            .current_dir(&self.dir)
            .env("HOLDFAST_LOG_STDERR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.services.push((name, KillOnDrop(child)));
    }

    fn wait_registrar(&self) {
        let probe = self.island.ns.udp_socket("127.0.0.1:0".parse().expect("addr")).expect("probe socket in the namespace");
        assert!(
            wait_ready_from(probe, LocalAppliance::registrar_addr(), Duration::from_secs(20)),
            "sba-registrar did not answer OPTIONS: {}",
            self.log("sba-registrar")
        );
    }

    /// sba-web on its embedded default, as image/run-local starts it (HTTP on 127.0.0.1:8080).
    pub fn start_web(&mut self) {
        self.spawn("sba-web", None);
    }

    /// kill -9 of the registrar, and a new one on the same database.
    pub fn restart_registrar(&mut self) {
        self.services.retain(|(name, _)| *name != "sba-registrar");
        self.spawn("sba-registrar", None);
        self.wait_registrar();
    }

    /// sbactl run as a user of run-local would: in its directory, inside its namespace.
    pub fn sbactl(&self, args: &[&str]) -> Output {
        self.island.ns.command(&bin("sbactl").to_string_lossy()).current_dir(&self.dir).args(args).output().expect("run sbactl")
    }

    /// `user`'s binding as `sbactl registrations --json` shows it, if it is registered.
    pub fn binding(&self, user: &str) -> Option<serde_json::Value> {
        let out = self.sbactl(&["registrations", "--json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        rows.into_iter().find(|b| b["aor"] == format!("sip:{user}@{DOMAIN}"))
    }

    /// Adds the first users (name, password) and waits until the registrar has read them: a
    /// phone registering before that is refused 403 and waits for its next refresh.
    pub fn add_users(&self, users: &[(&str, &str)]) {
        for (name, password) in users {
            let mut add = self.island.ns.command(&bin("sbactl").to_string_lossy());
            add.current_dir(&self.dir).args(["user", "add", name, "--domain", DOMAIN, "--password-stdin"]);
            let out = crate::registrar::with_stdin(add, password);
            assert!(out.status.success(), "sbactl user add: {}", String::from_utf8_lossy(&out.stderr));
        }
        let reloaded = format!("users reloaded: {}", users.len());
        assert!(self.wait_log("sba-registrar", &reloaded, Duration::from_secs(10)), "{}", self.log("sba-registrar"));
    }

    /// The simulated exchange calls `number` (a branch DID), hanging up `hangup_after` after the answer.
    pub fn pstn_call(&self, number: &str, hangup_after: Option<Duration>) {
        let mut args = vec!["pstn".to_string(), "call".into(), number.into()];
        if let Some(after) = hangup_after {
            args.extend(["--hangup-after".into(), after.as_secs().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.sbactl(&args);
        assert!(
            out.status.success(),
            "sbactl pstn call: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What `name` logged so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn wait_log(&self, name: &str, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log(name).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}
