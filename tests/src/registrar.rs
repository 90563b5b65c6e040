//! sba-registrar started by a test on a loopback port with its own config and database.
use crate::bins::{bin, spawn_registrar};
use crate::ports::free_port;
use crate::scratch::Scratch;
use crate::sip_probe::wait_ready;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::Duration;

pub struct Registrar {
    pub addr: SocketAddr,
    pub db: PathBuf,
    pub config: PathBuf,
    child: Option<Child>,
}

/// The test domain every registrar test uses.
pub const DOMAIN: &str = "branch.test";

impl Registrar {
    /// Writes a config with `extra` lines appended to its [registrar] section, adds `users`
    /// (name, password) with sbactl, and starts the registrar, waiting until it answers OPTIONS.
    pub fn start(scratch: &Scratch, extra: &str, users: &[(&str, &str)]) -> Registrar {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let db = scratch.file("sba.db");
        let config = scratch.file("sba.toml");
        std::fs::write(
            &config,
            format!(
                "[registrar]\nlisten = \"{addr}\"\ndb = \"{}\"\ndomain = \"{DOMAIN}\"\n{extra}\n",
                db.display()
            ),
        )
        .expect("write config");
        let mut r = Registrar { addr, db, config, child: None };
        let init = r.sbactl(&["init"]);
        assert!(init.status.success(), "sbactl init: {}", String::from_utf8_lossy(&init.stderr));
        for (name, password) in users {
            r.add_user(name, password);
        }
        r.restart();
        r
    }

    /// Starts the registrar again on the same config and database.
    pub fn restart(&mut self) {
        self.child = Some(spawn_registrar(Command::new(bin("sba-registrar")), &self.config));
        assert!(wait_ready(self.addr, Duration::from_secs(20)), "sba-registrar did not answer OPTIONS on {}", self.addr);
    }

    /// SIGKILL, as a power cut would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs sbactl against this registrar's database.
    pub fn sbactl(&self, args: &[&str]) -> Output {
        Command::new(bin("sbactl")).arg("--db").arg(&self.db).args(args).output().expect("run sbactl")
    }

    pub fn add_user(&self, name: &str, password: &str) {
        let mut add = Command::new(bin("sbactl"));
        add.arg("--db").arg(&self.db).args(["user", "add", name, "--domain", DOMAIN, "--password-stdin"]);
        let out = with_stdin(add, password);
        assert!(out.status.success(), "sbactl user add: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `sbactl registrations --json`, parsed.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        let out = self.sbactl(&["registrations", "--json"]);
        assert!(out.status.success(), "sbactl registrations: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("registrations --json is a JSON array")
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `command` with `line` (a password) on its standard input, as `--password-stdin` reads it.
pub fn with_stdin(mut command: Command, line: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    // A command that exits without reading (a refused argument) closes the pipe: not an error here.
    let _ = child.stdin.take().expect("stdin").write_all(format!("{line}\n").as_bytes());
    child.wait_with_output().expect("wait")
}
