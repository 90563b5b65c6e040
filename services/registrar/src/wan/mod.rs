//! WAN monitor: decides whether the central site is reachable from SIP OPTIONS keepalives.
//!
//! Sans-IO: the caller asks `poll_probe(now)` for probes to send (building each with
//! `options_request`), feeds back what happened (`on_response`, `on_transport_error`), calls
//! `handle_timeout(now)` at `next_timeout()`, and drains `poll_event()` for state changes.
//!
//! Verdicts:
//! - A probe fails on timeout, a transport error, or a 503. 503 is the one status by which a
//!   central site says "I will not serve you" (overload, maintenance: RFC 3261 §21.5.4); any other
//!   final response (200, 404, 405, 483, even 500) proves a SIP stack at the far end parsed our
//!   request and answered, which is all the branch needs to keep passing traffic through.
//!   Provisional responses are not verdicts.
//! - Each target goes down after `down_after` consecutive failures and up after `up_after`
//!   consecutive successes, counted in the order the probes were sent (an answer waits for the
//!   verdict on older probes). The WAN is up while any target is up.
//! - Probes go out every `interval` whether or not earlier ones are answered (pipelined), so
//!   detection takes about `timeout + (down_after - 1) * interval` after the last good answer:
//!   0.8 s + 2 × 0.4 s = 1.6 s (at most 2.0 s) with the defaults.
//! - A response to a probe that already timed out (or to no probe of ours) is ignored: it was
//!   already counted as a failure and the WAN proved no better than that.
//! - An answer counts only when it comes from the probed target's address and carries the
//!   probe's token (a keyed hash of its id: unguessable without the monitor's secret). Anything
//!   else is a forgery, ignored and counted: a host on the LAN must neither keep a branch in
//!   pass-through while the WAN is dead nor push it into survival.
mod probe;

pub use probe::{options_request, probe_answer, probe_of, ProbeAnswer};

use holdfast_sip::keyed::KeyedHash;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WanConfig {
    /// The central site's SIP addresses; the WAN is up while any of them answers.
    pub targets: Vec<SocketAddr>,
    /// Time between two probes to the same target.
    pub interval: Duration,
    /// How long a probe may go unanswered before it counts as failed.
    pub timeout: Duration,
    /// Consecutive failures that take a target down.
    pub down_after: u32,
    /// Consecutive successes that bring a target back up.
    pub up_after: u32,
    /// The state before any verdict. Up by default so a branch with a healthy WAN passes
    /// registrations through from its first second; a caller that knows the WAN was down (a
    /// restart during an outage) can start Down and wait for `up_after` successes.
    pub initial: WanState,
}

impl Default for WanConfig {
    fn default() -> Self {
        WanConfig {
            targets: Vec::new(),
            interval: Duration::from_millis(400),
            timeout: Duration::from_millis(800),
            down_after: 3,
            up_after: 5,
            initial: WanState::Up,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WanConfigError {
    #[error("the WAN monitor needs at least one target")]
    NoTargets,
    #[error("the WAN probe interval must be longer than zero")]
    ZeroInterval,
    #[error("the WAN probe timeout must be longer than zero")]
    ZeroTimeout,
    #[error("down_after and up_after must be at least 1")]
    ZeroThreshold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WanState {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WanEvent {
    Down { at: Instant },
    Up { at: Instant },
}

/// One OPTIONS the caller must send to `target`; its answer must carry `token` back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub id: u64,
    pub target: SocketAddr,
    pub token: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WanCounters {
    /// Changes of the overall state, either way.
    pub transitions: u64,
    pub probes_sent: u64,
    pub successes: u64,
    pub failures: u64,
    /// Genuine answers that came after their probe timed out.
    pub ignored_responses: u64,
    /// Answers with a wrong token, from another address than the probed target's, or to no
    /// probe of ours: forgeries, ignored.
    pub forged: u64,
}

#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    state: WanState,
    next_send: Instant,
    failures_in_row: u32,
    successes_in_row: u32,
}

#[derive(Debug)]
struct Outstanding {
    target: usize,
    deadline: Instant,
    /// Judged (true: success) but waiting for older probes of its target to be judged.
    verdict: Option<bool>,
}

#[derive(Debug)]
pub struct WanMonitor {
    config: WanConfig,
    tokens: KeyedHash,
    targets: Vec<Target>,
    /// Probes not yet applied to their target's runs, by id (ids grow with send time).
    outstanding: BTreeMap<u64, Outstanding>,
    next_id: u64,
    state: WanState,
    events: VecDeque<WanEvent>,
    /// Probes that timed out, for `poll_lost` (the oldest dropped beyond `LOST_KEPT`).
    lost: VecDeque<(u64, SocketAddr)>,
    counters: WanCounters,
}

const LOST_KEPT: usize = 64;

impl WanMonitor {
    /// A monitor whose first probes are due at `now`; `secret` keys the probes' tokens (random
    /// per start: a token must not be predictable from an earlier run's).
    pub fn new(config: WanConfig, now: Instant, secret: [u8; 32]) -> Result<Self, WanConfigError> {
        if config.targets.is_empty() {
            return Err(WanConfigError::NoTargets);
        }
        if config.interval.is_zero() {
            return Err(WanConfigError::ZeroInterval);
        }
        if config.timeout.is_zero() {
            return Err(WanConfigError::ZeroTimeout);
        }
        if config.down_after == 0 || config.up_after == 0 {
            return Err(WanConfigError::ZeroThreshold);
        }
        let targets = config
            .targets
            .iter()
            .map(|&addr| Target { addr, state: config.initial, next_send: now, failures_in_row: 0, successes_in_row: 0 })
            .collect();
        Ok(WanMonitor {
            tokens: KeyedHash::new(&secret, "wan-probe"),
            state: config.initial,
            config,
            targets,
            outstanding: BTreeMap::new(),
            next_id: 1,
            events: VecDeque::new(),
            lost: VecDeque::new(),
            counters: WanCounters::default(),
        })
    }

    pub fn state(&self) -> WanState {
        self.state
    }

    /// The state of each target, in configuration order.
    pub fn target_states(&self) -> impl Iterator<Item = (SocketAddr, WanState)> + '_ {
        self.targets.iter().map(|t| (t.addr, t.state))
    }

    pub fn counters(&self) -> WanCounters {
        self.counters
    }

    /// The next probe due at `now`, if any; call until None.
    pub fn poll_probe(&mut self, now: Instant) -> Option<Probe> {
        let index = self.targets.iter().position(|t| t.next_send <= now)?;
        let target = &mut self.targets[index];
        // Keep the cadence, but a caller that was late gets no burst of catch-up probes.
        let next = target.next_send + self.config.interval;
        target.next_send = if next > now { next } else { now + self.config.interval };
        let id = self.next_id;
        self.next_id += 1;
        let addr = target.addr;
        self.outstanding.insert(id, Outstanding { target: index, deadline: now + self.config.timeout, verdict: None });
        self.counters.probes_sent += 1;
        Some(Probe { id, target: addr, token: self.tokens.hex_tag(&[&token_input(id, addr)]) })
    }

    /// A response that looks like a probe's answer arrived from `from`.
    pub fn on_response(&mut self, answer: &ProbeAnswer, from: SocketAddr, status: u16, now: Instant) {
        // The token binds the probe to its target: only that address's answer carries it.
        if !self.tokens.verify_hex(&[&token_input(answer.id, from)], &answer.token) {
            self.counters.forged += 1;
            return;
        }
        if status < 200 {
            return;
        }
        if !self.judge(answer.id, status != 503) {
            self.counters.ignored_responses += 1;
        }
        self.settle(now);
    }

    /// Sending probe `id` failed, or the transport reported it unreachable (ICMP, TCP reset).
    pub fn on_transport_error(&mut self, id: u64, now: Instant) {
        self.judge(id, false);
        self.settle(now);
    }

    /// Fails every probe whose time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Ids grow with send time and all probes share one timeout, so deadlines grow with ids.
        for (&id, probe) in self.outstanding.iter_mut() {
            if probe.deadline > now {
                break;
            }
            if probe.verdict.is_none() {
                probe.verdict = Some(false);
                if self.lost.len() == LOST_KEPT {
                    self.lost.pop_front();
                }
                self.lost.push_back((id, self.targets[probe.target].addr));
            }
        }
        self.settle(now);
    }

    /// The probes that went unanswered (id, target), oldest first: over TCP or TLS the
    /// connection they went on may be dead (`crate::central`).
    pub fn poll_lost(&mut self) -> Option<(u64, SocketAddr)> {
        self.lost.pop_front()
    }

    /// When `handle_timeout` or `poll_probe` next has work.
    pub fn next_timeout(&self) -> Option<Instant> {
        let send = self.targets.iter().map(|t| t.next_send).min();
        let deadline = self.outstanding.values().find(|p| p.verdict.is_none()).map(|p| p.deadline);
        match (send, deadline) {
            (Some(s), Some(d)) => Some(s.min(d)),
            (s, d) => s.or(d),
        }
    }

    pub fn poll_event(&mut self) -> Option<WanEvent> {
        self.events.pop_front()
    }

    /// Records the verdict on an unjudged probe; false if there is none to judge.
    fn judge(&mut self, id: u64, success: bool) -> bool {
        match self.outstanding.get_mut(&id) {
            Some(probe) if probe.verdict.is_none() => {
                probe.verdict = Some(success);
                true
            }
            _ => false,
        }
    }

    /// Applies judged probes to their target's runs in send order: a probe answered while an
    /// older one is still pending waits for it, so a lost probe always breaks a run even when
    /// its timeout comes after newer probes were answered.
    fn settle(&mut self, now: Instant) {
        for index in 0..self.targets.len() {
            loop {
                let oldest = self.outstanding.iter().find(|(_, p)| p.target == index);
                let Some((&id, &Outstanding { verdict: Some(success), .. })) = oldest else { break };
                self.outstanding.remove(&id);
                self.apply(index, success);
            }
        }
        let overall = if self.targets.iter().any(|t| t.state == WanState::Up) { WanState::Up } else { WanState::Down };
        if overall != self.state {
            self.state = overall;
            self.counters.transitions += 1;
            self.events.push_back(match overall {
                WanState::Up => WanEvent::Up { at: now },
                WanState::Down => WanEvent::Down { at: now },
            });
        }
    }

    fn apply(&mut self, index: usize, success: bool) {
        let target = &mut self.targets[index];
        if success {
            self.counters.successes += 1;
            target.failures_in_row = 0;
            target.successes_in_row = target.successes_in_row.saturating_add(1);
            if target.state == WanState::Down && target.successes_in_row >= self.config.up_after {
                target.state = WanState::Up;
            }
        } else {
            self.counters.failures += 1;
            target.successes_in_row = 0;
            target.failures_in_row = target.failures_in_row.saturating_add(1);
            if target.state == WanState::Up && target.failures_in_row >= self.config.down_after {
                target.state = WanState::Down;
            }
        }
    }
}

/// What a probe's token is the keyed hash of: its id and its target's address and port.
fn token_input(id: u64, target: SocketAddr) -> [u8; 26] {
    let ip = match target.ip() {
        std::net::IpAddr::V4(a) => a.to_ipv6_mapped(),
        std::net::IpAddr::V6(a) => a,
    };
    let mut input = [0u8; 26];
    input[..8].copy_from_slice(&id.to_be_bytes());
    input[8..24].copy_from_slice(&ip.octets());
    input[24..].copy_from_slice(&target.port().to_be_bytes());
    input
}

#[cfg(test)]
mod tests;
