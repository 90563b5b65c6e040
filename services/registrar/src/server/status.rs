//! The registrar's state for `sbactl status` and sba-web: `<db>.status.json`, replaced
//! atomically whenever the WAN state changes and every few seconds. It also keeps the WAN
//! probes' round trips (the history the page draws, the histogram the metrics expose).
use crate::routing::Mode;
use crate::wan::WanCounters;
use holdfast_status::snapshot::{self, ProbeSample, RegistrarStatus};
use holdfast_status::{Histogram, HistogramSnapshot};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Probes kept for the page: two minutes at the default interval.
const HISTORY: usize = 300;
/// A probe with no answer after this is written down as unanswered (the WAN monitor's own
/// timeout is shorter; this only bounds what is remembered).
const FORGET_AFTER: Duration = Duration::from_secs(5);

pub struct StatusFile {
    path: PathBuf,
    started: u64,
    since: u64,
    /// Probes sent and not answered yet: (id, sent, sample).
    pending: VecDeque<(u64, Instant, ProbeSample)>,
    history: VecDeque<ProbeSample>,
    rtt: Histogram,
}

impl StatusFile {
    /// `<db>.status.json`.
    pub fn beside(db: &Path, now: u64) -> StatusFile {
        StatusFile {
            path: holdfast_status::path_of::<RegistrarStatus>(db),
            started: now,
            since: now,
            pending: VecDeque::new(),
            history: VecDeque::new(),
            rtt: Histogram::default(),
        }
    }

    /// The WAN changed state at `now`.
    pub fn changed(&mut self, now: u64) {
        self.since = now;
    }

    /// Whether the last run wrote down a dead WAN (a restart during an outage stays in
    /// survival until the WAN proves itself, instead of relaying into the void).
    pub fn was_down(&self) -> bool {
        holdfast_status::read::<RegistrarStatus>(&self.path).is_some_and(|s| s.wan == "down")
    }

    pub fn probe_sent(&mut self, id: u64, target: SocketAddr, now: Instant) {
        while self.pending.front().is_some_and(|(_, sent, _)| now.duration_since(*sent) > FORGET_AFTER) {
            if let Some((_, _, unanswered)) = self.pending.pop_front() {
                self.remember(unanswered);
            }
        }
        let sample = ProbeSample { at_ms: holdfast_runtime::unix_ms(), target: target.to_string(), rtt_ms: None };
        self.pending.push_back((id, now, sample));
    }

    pub fn probe_answered(&mut self, id: u64, now: Instant) {
        let Some(i) = self.pending.iter().position(|(p, _, _)| *p == id) else { return };
        if let Some((_, sent, mut sample)) = self.pending.remove(i) {
            let rtt = now.duration_since(sent);
            self.rtt.observe(rtt);
            sample.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
            self.remember(sample);
        }
    }

    fn remember(&mut self, sample: ProbeSample) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(sample);
    }

    pub fn write(
        &self,
        mode: Mode,
        wan: Option<WanCounters>,
        refused: BTreeMap<String, u64>,
        bindings: usize,
        calls: usize,
        commit: HistogramSnapshot,
    ) {
        let (mode, wan_state) = match mode {
            Mode::Standalone => ("primary", "none"),
            Mode::Normal => ("pass-through", "up"),
            Mode::Survival => ("survival", "down"),
        };
        let status = RegistrarStatus {
            service: "sba-registrar".into(),
            pid: std::process::id(),
            mode: mode.into(),
            wan: wan_state.into(),
            since: self.since,
            started: self.started,
            written_at_ms: holdfast_runtime::unix_ms(),
            bindings: bindings as u64,
            proxied_requests: calls as u64,
            forged_probe_answers: wan.map_or(0, |c| c.forged),
            wan_counters: wan.map(|c| snapshot::WanCounters {
                transitions: c.transitions,
                probes_sent: c.probes_sent,
                successes: c.successes,
                failures: c.failures,
            }),
            probes: self.history.iter().cloned().collect(),
            probe_rtt: self.rtt.snapshot(),
            commit,
            refused,
        };
        match serde_json::to_vec(&status) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                holdfast_status::write_atomic(&self.path, &bytes);
            }
            Err(e) => log::warn!("status file {}: {e}", self.path.display()),
        }
    }
}
