//! sipp phones inside the topology's namespaces: a builder like `sipp::Sipp` that binds to an
//! address of a namespace instead of loopback, registered phones that answer calls, a carrier
//! that answers calls, and calls that hold for a while and hang up.
//!
//! Scenarios (tests/scenarios): call_phone.xml registers and refreshes for the phone's life,
//! call_answer.xml answers one call (180, 200 with SDP, ACK, the caller's BYE), call_uac.xml
//! places one call and hangs up after the hold time, call_register.xml registers once.
use super::PhoneConfig;
use crate::bins::scenario;
use crate::netns::{KillOnDrop, Netns};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct NsSipp<'a> {
    ns: &'a Netns,
    scenario: &'a str,
    /// The sipp socket: its IP must belong to `ns`.
    local: SocketAddr,
    /// None for a UAS that only answers.
    target: Option<SocketAddr>,
    args: Vec<String>,
    /// None: run until stopped.
    calls: Option<u32>,
    rate: u32,
}

impl<'a> NsSipp<'a> {
    pub fn new(ns: &'a Netns, scenario: &'a str, local: SocketAddr, target: SocketAddr) -> NsSipp<'a> {
        NsSipp { ns, scenario, local, target: Some(target), args: Vec::new(), calls: Some(1), rate: 10 }
    }

    /// A UAS on `local` running `scenario` for every call until stopped.
    pub fn uas(ns: &'a Netns, scenario: &'a str, local: SocketAddr) -> NsSipp<'a> {
        NsSipp { ns, scenario, local, target: None, args: Vec::new(), calls: None, rate: 10 }
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
        self.calls = Some(calls);
        self.rate = rate;
        self
    }

    /// The command line; sipp writes its logs into `dir` and gives up after `timeout_s` seconds.
    pub fn command(&self, dir: &Path, timeout_s: u32) -> Command {
        let mut cmd = self.ns.command("sipp");
        cmd.current_dir(dir);
        if let Some(target) = self.target {
            cmd.arg(target.to_string());
        }
        // sipp binds a media port (and the one two above it) even without RTP: derive it from
        // the SIP port so several sipps on one address do not collide.
        let media_port = 10_000 + u32::from(self.local.port()) % 50_000;
        cmd.arg("-sf")
            .arg(scenario(self.scenario))
            .args(["-i", &self.local.ip().to_string(), "-p", &self.local.port().to_string()])
            .args(["-mp", &media_port.to_string()])
            .args(["-t", "u1", "-nostdin", "-trace_err"])
            .args(["-r", &self.rate.to_string()])
            .args(["-timeout", &format!("{timeout_s}s"), "-timeout_error"])
            .args(&self.args)
            .stdin(Stdio::null());
        if let Some(calls) = self.calls {
            cmd.args(["-m", &calls.to_string()]);
        }
        cmd
    }

    /// Logs every message to `file` (sipp's -trace_msg).
    pub fn trace_messages(self, file: &Path) -> Self {
        self.arg("-trace_msg").arg("-message_file").arg(file.to_string_lossy())
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

/// A sipp that answers calls until dropped, and (as a phone) keeps itself registered. What it
/// did is read back from its message log.
pub struct Answerer {
    pub addr: SocketAddr,
    messages: PathBuf,
    _sipp: KillOnDrop,
}

impl Answerer {
    /// A phone: registers `c.user` and answers every call to it, for at most `lifetime_s`.
    pub fn phone(ns: &Netns, dir: &Path, c: &PhoneConfig, lifetime_s: u32) -> Answerer {
        let dir = dir.join(format!("phone-{}-{}", c.user, c.addr.port()));
        std::fs::create_dir_all(&dir).expect("phone dir");
        let messages = dir.join("messages.log");
        let sipp = NsSipp::new(ns, "call_phone.xml", c.addr, c.registrar)
            .key("user", c.user)
            .key("domain", c.domain)
            .key("expires", c.expires.to_string())
            .credentials(c.user, c.password)
            .arg("-d")
            .arg(c.refresh.as_millis().to_string())
            .arg("-oocsf")
            .arg(scenario("call_answer.xml").to_string_lossy())
            .trace_messages(&messages)
            // Registrations retry at the next refresh to ride out WAN cuts: sipp's own
            // retransmission limit must not end the phone first.
            .arg("-max_non_invite_retrans")
            .arg("100")
            // A stray answer (a duplicate 500, a late 401) must not end the phone either.
            .arg("-default_behaviors")
            .arg("all,-abortunexp")
            .spawn(&dir, lifetime_s);
        Answerer { addr: c.addr, messages, _sipp: sipp }
    }

    /// A carrier (or any UAS): answers every call sent to `addr`, for at most `lifetime_s`.
    pub fn carrier(ns: &Netns, dir: &Path, addr: SocketAddr, lifetime_s: u32) -> Answerer {
        let dir = dir.join(format!("carrier-{}", addr.port()));
        std::fs::create_dir_all(&dir).expect("carrier dir");
        let messages = dir.join("messages.log");
        let sipp = NsSipp::uas(ns, "call_answer.xml", addr).trace_messages(&messages).spawn(&dir, lifetime_s);
        Answerer { addr, messages, _sipp: sipp }
    }

    /// Successful registrations so far (200s to REGISTER received).
    pub fn registrations(&self) -> usize {
        self.count(Direction::Received, "SIP/2.0 200", "REGISTER")
    }

    /// Calls answered so far (200s to INVITE sent, retransmissions not counted).
    pub fn answered(&self) -> usize {
        self.count(Direction::Sent, "SIP/2.0 200", "INVITE")
    }

    /// Calls hung up by the caller so far (BYEs received and answered).
    pub fn hung_up(&self) -> usize {
        self.count(Direction::Sent, "SIP/2.0 200", "BYE")
    }

    /// Waits until `registrations()` exceeds `before`, polling for at most `within`.
    pub fn wait_registrations(&self, before: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.registrations() > before {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The raw message log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.messages).unwrap_or_default()
    }

    /// Distinct messages (by Call-ID and CSeq) in `direction` whose first line starts with
    /// `first_line` and whose CSeq method is `method`.
    fn count(&self, direction: Direction, first_line: &str, method: &str) -> usize {
        let log = self.log();
        let mut seen = std::collections::HashSet::new();
        for block in log.split("----------------------------------------------- ") {
            let Some((header, message)) = block.split_once("\n\n") else { continue };
            let wanted = match direction {
                Direction::Sent => header.contains("message sent"),
                Direction::Received => header.contains("message received"),
            };
            if !wanted || !message.trim_start().starts_with(first_line) {
                continue;
            }
            let field = |name: &str| {
                message.lines().find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            if let (Some(call_id), Some(cseq)) = (field("Call-ID"), field("CSeq")) {
                if cseq.ends_with(method) {
                    seen.insert((call_id, cseq));
                }
            }
        }
        seen.len()
    }
}

enum Direction {
    Sent,
    Received,
}

/// One call from `caller` at `from` to `callee` through `proxy`, held for `hold` and hung up
/// by the caller. `.run(dir, timeout)` succeeds only if the call connected and its BYE got a
/// 200; `.spawn` runs it beside the test.
pub fn call<'a>(ns: &'a Netns, from: SocketAddr, proxy: SocketAddr, caller: &str, callee: &str, domain: &str, hold: Duration) -> NsSipp<'a> {
    NsSipp::new(ns, "call_uac.xml", from, proxy)
        .key("caller", caller)
        .key("domain", domain)
        .arg("-s")
        .arg(callee)
        .arg("-d")
        .arg(hold.as_millis().to_string())
}
