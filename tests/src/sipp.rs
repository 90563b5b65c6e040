//! sipp (Debian's sip-tester) run by a test against a server, bounded in calls and time.
use crate::bins::scenario;
use crate::ports::free_port;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

pub struct Sipp<'a> {
    pub scenario: &'a str,
    pub target: SocketAddr,
    pub keys: Vec<(&'a str, String)>,
    pub calls: u32,
    pub rate: u32,
    pub extra: Vec<String>,
}

impl<'a> Sipp<'a> {
    pub fn new(scenario: &'a str, target: SocketAddr) -> Sipp<'a> {
        Sipp { scenario, target, keys: Vec::new(), calls: 1, rate: 10, extra: Vec::new() }
    }

    pub fn key(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.keys.push((name, value.into()));
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra.push(a.into());
        self
    }

    /// Digest credentials (sipp's -au/-ap).
    pub fn credentials(self, user: &str, password: &str) -> Self {
        self.arg("-au").arg(user).arg("-ap").arg(password)
    }

    /// `calls` calls at `rate` per second.
    pub fn calls(mut self, calls: u32, rate: u32) -> Self {
        self.calls = calls;
        self.rate = rate;
        self
    }

    /// Runs in `dir` (sipp writes its logs there); at most `timeout_s` seconds.
    pub fn run(&self, dir: &Path, timeout_s: u32) -> Output {
        self.command(dir, timeout_s).output().expect("run sipp (apt-get install sip-tester)")
    }

    /// The sipp command line, to spawn it beside the test.
    pub fn command(&self, dir: &Path, timeout_s: u32) -> Command {
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir)
            .arg(self.target.to_string())
            .args(["-sf"])
            .arg(scenario(self.scenario))
            .args(["-i", "127.0.0.1", "-p", &free_port().to_string(), "-t", "u1", "-nostdin"])
            .args(["-m", &self.calls.to_string(), "-r", &self.rate.to_string()])
            .args(["-timeout", &format!("{timeout_s}s"), "-timeout_error"]);
        for (k, v) in &self.keys {
            cmd.args(["-key", k, v]);
        }
        cmd.args(&self.extra);
        cmd
    }
}
