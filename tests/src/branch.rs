//! The SBA under test inside the survivability topology: sba-registrar started in the `sba`
//! namespace with a config naming Kamailio as the central site and the PSTN namespace's carrier
//! as the way out, plus what the tests read back (mode, bindings).
use crate::bins::{bin, spawn_registrar};
use crate::netns::{KillOnDrop, Topology, CENTRAL, PSTN, SBA_LAN};
use crate::scratch::Scratch;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Sba<'a> {
    topo: &'a Topology,
    pub config: PathBuf,
    pub db: PathBuf,
    /// Where the phones send everything.
    pub addr: SocketAddr,
    child: Option<KillOnDrop>,
}

impl<'a> Sba<'a> {
    /// `extra` is appended to the config (more sections, e.g. [[directory]]).
    pub fn start(topo: &'a Topology, scratch: &Scratch, domain: &str, central_port: u16, extra: &str) -> Sba<'a> {
        Sba::start_with(topo, scratch, domain, central_port, ["", "", extra])
    }

    /// `start` with more keys: `[registrar_keys, central_keys, extra]` go at the end of
    /// [registrar], of [central], and of the file.
    pub fn start_with(topo: &'a Topology, scratch: &Scratch, domain: &str, central_port: u16, more: [&str; 3]) -> Sba<'a> {
        let [registrar_keys, central_keys, extra] = more;
        let db = scratch.file("sba.db");
        let config = scratch.file("sba.toml");
        std::fs::write(
            &config,
            format!(
                "[registrar]\nlisten = \"0.0.0.0:5060\"\ndb = \"{}\"\ndomain = \"{domain}\"\n{registrar_keys}\n\
                 [central]\nproxies = [\"{CENTRAL}:{central_port}\"]\nbranch_expires = 60\n{central_keys}\n\
                 [survival]\nmediation = \"{PSTN}:5060\"\n\n{extra}\n",
                db.display()
            ),
        )
        .expect("write config");
        let mut sba = Sba { topo, config, db, addr: SocketAddr::from((SBA_LAN, 5060)), child: None };
        sba.restart();
        sba
    }

    pub fn restart(&mut self) {
        let in_sba = self.topo.sba.command(bin("sba-registrar").to_str().expect("utf-8 path"));
        let child = spawn_registrar(in_sba, &self.config);
        let pid = u64::from(child.id());
        self.child = Some(KillOnDrop(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        // `ip netns exec` execs the registrar, so the pid it writes is the child's.
        while self.status().and_then(|s| s["pid"].as_u64()) != Some(pid) {
            assert!(Instant::now() < deadline, "sba-registrar did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a power cut would.
    pub fn kill9(&mut self) {
        self.child = None;
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.0.try_wait(), Ok(None)))
    }

    /// `sbactl status --json`, once the registrar has written it.
    pub fn status(&self) -> Option<serde_json::Value> {
        status_of(&self.db)
    }

    pub fn mode(&self) -> String {
        mode_of(&self.db)
    }

    /// Polls until the mode is `want`; how long it took, or None after `within`.
    pub fn wait_mode(&self, want: &str, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.mode() == want {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `wan_counters.transitions` of `sbactl status --json`: the WAN state changes, either way.
    pub fn transitions(&self) -> u64 {
        self.status().and_then(|s| s["wan_counters"]["transitions"].as_u64()).unwrap_or(0)
    }

    /// One WAN flap that crosses both thresholds: the WAN stays cut until the registrar is in
    /// survival, then restored until it is back in pass-through (each within `within`).
    pub fn flap(&self, within: Duration) -> Flap {
        let cut = Instant::now();
        self.topo.cut_wan();
        let to_survival = self.wait_mode("survival", within).unwrap_or_else(|| panic!("no survival after the cut:\n{}", self.log()));
        self.topo.restore_wan();
        let to_pass_through =
            self.wait_mode("pass-through", within).unwrap_or_else(|| panic!("no failback after the restore:\n{}", self.log()));
        Flap { to_survival, to_pass_through, cycle: cut.elapsed() }
    }

    /// `sbactl registrations --json`.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        let out = Command::new(bin("sbactl"))
            .arg("--db")
            .arg(&self.db)
            .args(["registrations", "--json"])
            .output()
            .expect("run sbactl");
        assert!(out.status.success(), "sbactl registrations: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }
}

/// What one `Sba::flap` took.
#[derive(Debug, Clone, Copy)]
pub struct Flap {
    /// From the cut to survival mode, as sbactl saw it.
    pub to_survival: Duration,
    /// From the restore to pass-through.
    pub to_pass_through: Duration,
    /// The whole cycle, cut to pass-through.
    pub cycle: Duration,
}

/// `sbactl status --json` for the registrar using database `db`.
pub fn status_of(db: &Path) -> Option<serde_json::Value> {
    let out = Command::new(bin("sbactl")).arg("--db").arg(db).args(["status", "--json"]).output().ok()?;
    out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
}

/// The registrar's mode (primary, pass-through, survival), or "" before it has said.
pub fn mode_of(db: &Path) -> String {
    status_of(db).and_then(|s| s["mode"].as_str().map(str::to_string)).unwrap_or_default()
}
