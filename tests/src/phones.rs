//! sipp phones inside the topology's namespaces: a builder like `sipp::Sipp` that binds to an
//! address of a namespace instead of loopback.
use crate::bins::scenario;
use crate::netns::{KillOnDrop, Netns};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub struct NsSipp<'a> {
    ns: &'a Netns,
    scenario: &'a str,
    /// The sipp socket: its IP must belong to `ns`.
    local: SocketAddr,
    target: SocketAddr,
    args: Vec<String>,
    calls: u32,
    rate: u32,
}

impl<'a> NsSipp<'a> {
    pub fn new(ns: &'a Netns, scenario: &'a str, local: SocketAddr, target: SocketAddr) -> NsSipp<'a> {
        NsSipp { ns, scenario, local, target, args: Vec::new(), calls: 1, rate: 10 }
    }

    pub fn key(self, name: &str, value: impl Into<String>) -> Self {
        self.arg("-key").arg(name).arg(value)
    }

    /// Digest credentials (sipp's -au/-ap).
    pub fn credentials(self, user: &str, password: &str) -> Self {
        self.arg("-au").arg(user).arg("-ap").arg(password)
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// `calls` calls at `rate` per second.
    pub fn calls(mut self, calls: u32, rate: u32) -> Self {
        self.calls = calls;
        self.rate = rate;
        self
    }

    /// The command line; sipp writes its logs into `dir` and gives up after `timeout_s` seconds.
    pub fn command(&self, dir: &Path, timeout_s: u32) -> Command {
        let mut cmd = self.ns.command("sipp");
        cmd.current_dir(dir)
            .arg(self.target.to_string())
            .arg("-sf")
            .arg(scenario(self.scenario))
            .args(["-i", &self.local.ip().to_string(), "-p", &self.local.port().to_string()])
            .args(["-t", "u1", "-nostdin", "-trace_err"])
            .args(["-m", &self.calls.to_string(), "-r", &self.rate.to_string()])
            .args(["-timeout", &format!("{timeout_s}s"), "-timeout_error"])
            .args(&self.args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs to completion (at most `timeout_s` seconds).
    pub fn run(&self, dir: &Path, timeout_s: u32) -> Output {
        self.command(dir, timeout_s).output().expect("run sipp (apt-get install sip-tester)")
    }

    /// Starts sipp beside the test; it is killed when the handle is dropped.
    pub fn spawn(&self, dir: &Path, timeout_s: u32) -> KillOnDrop {
        let child = self
            .command(dir, timeout_s)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp (apt-get install sip-tester)");
        KillOnDrop(child)
    }
}
