//! The status file of each service. Fields are added, never renamed (the page and `sbactl
//! status` of another version may read them); every field has a default so a reader copes with
//! an older writer.
use crate::HistogramSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `<db>.status.json`, by sba-registrar: on every WAN change and every few seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistrarStatus {
    pub service: String,
    pub pid: u32,
    /// "primary" (no central site), "pass-through" or "survival".
    pub mode: String,
    /// "none", "up" or "down".
    pub wan: String,
    /// Unix seconds of the last WAN change (or the start).
    pub since: u64,
    pub started: u64,
    pub written_at_ms: u64,
    pub bindings: u64,
    pub proxied_requests: u64,
    /// Answers to WAN probes that did not come from the probed address with its token.
    pub forged_probe_answers: u64,
    pub wan_counters: Option<WanCounters>,
    /// The latest WAN probes, oldest first.
    pub probes: Vec<ProbeSample>,
    /// Round trips of answered WAN probes.
    pub probe_rtt: HistogramSnapshot,
    /// Binding group commits (the fsync a REGISTER's 200 OK waits for).
    pub commit: HistogramSnapshot,
    /// Requests refused, by reason.
    pub refused: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WanCounters {
    pub transitions: u64,
    pub probes_sent: u64,
    pub successes: u64,
    pub failures: u64,
}

/// One WAN probe (SIP OPTIONS to a central proxy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeSample {
    /// Unix milliseconds when it was sent.
    pub at_ms: u64,
    pub target: String,
    /// Its round trip; None when it went unanswered.
    pub rtt_ms: Option<f64>,
}

/// `<db>.mediation.json`, by sba-mediation, every second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MediationStatus {
    pub service: String,
    pub pid: u32,
    pub started: u64,
    pub written_at_ms: u64,
    pub calls: Vec<ActiveCall>,
    /// Calls ended since the start, by result (answered, busy, no-answer, refused, failed).
    pub calls_total: BTreeMap<String, u64>,
    pub trunks: Vec<TrunkState>,
    pub rtp: RtpCounters,
    pub cdrs: CdrCounters,
    /// Call record group commits.
    pub commit: HistogramSnapshot,
    /// Requests refused, by reason.
    pub refused: BTreeMap<String, u64>,
}

/// A call in progress through sba-mediation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActiveCall {
    pub caller: String,
    pub callee: String,
    /// The trunk it is on (or being tried), "registrar" for a DID call to a branch user.
    pub trunk: String,
    pub answered: bool,
    /// Unix milliseconds of its INVITE.
    pub setup_at_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrunkState {
    pub name: String,
    /// carrier, gateway or pbx.
    pub kind: String,
    pub address: String,
    /// False once `dead_after` OPTIONS in a row went unanswered.
    pub up: bool,
    /// Whether OPTIONS health checks run on it at all.
    pub monitored: bool,
}

/// RTP through the relay, in packets, since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RtpCounters {
    pub relayed: u64,
    /// Dropped for any reason (foreign source, malformed, nowhere to send yet, send error).
    pub dropped: u64,
    /// Dropped because they came from an address that is not the call's party.
    pub dropped_foreign: u64,
    /// Gaps in the RTP sequence numbers the parties sent.
    pub lost: u64,
    /// SRTP/SRTCP whose authentication tag did not verify (forged, or under another key).
    pub srtp_auth_failed: u64,
    /// SRTP/SRTCP replayed (an index seen already) or behind the replay window.
    pub srtp_replayed: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CdrCounters {
    pub records: u64,
    pub commits: u64,
    /// Records the database refused.
    pub lost: u64,
}

/// sba-gateway's `[gateway].status_file`, every second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayStatus {
    pub service: String,
    pub pid: u32,
    pub started: u64,
    pub written_at_ms: u64,
    /// DAHDI span number.
    pub span: i32,
    /// "E1" or "T1".
    pub spantype: String,
    pub simulated: bool,
    /// The span is up and its D-channel established: calls can run.
    pub in_service: bool,
    /// DAHDI alarm names ("none", "red+los", ...) and their bits.
    pub alarms: String,
    pub alarm_bits: u32,
    pub bchannels: u32,
    pub bchannels_in_use: u32,
    /// SIP refused, by reason (not_a_peer: from anyone but sba-mediation).
    pub refused: BTreeMap<String, u64>,
    /// Why the DAHDI span is not open yet (no card, its driver not loaded): sba-gateway is
    /// looking for it again every second. None once the span is open.
    pub waiting_for_span: Option<String>,
}
