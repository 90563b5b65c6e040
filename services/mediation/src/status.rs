//! sba-mediation's status snapshot, `<db>.mediation.json`, for sba-web and its metrics:
//! calls in progress and ended (by result), trunk health, RTP through the relay, call record
//! commits. Written atomically every second from the event loop (a few kilobytes).
use crate::b2bua::B2bua;
use crate::health::Health;
use crate::relay_media::RelayMedia;
use holdfast_status::snapshot::{CdrCounters, MediationStatus, TrunkState};
use holdfast_store::{Cdr, CdrWriter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct StatusFile {
    path: PathBuf,
    started: u64,
    calls_total: BTreeMap<String, u64>,
}

impl StatusFile {
    pub fn beside(db: &Path) -> StatusFile {
        StatusFile {
            path: holdfast_status::path_of::<MediationStatus>(db),
            started: holdfast_runtime::unix_ms() / 1000,
            calls_total: BTreeMap::new(),
        }
    }

    /// A call ended with this record.
    pub fn on_cdr(&mut self, cdr: &Cdr) {
        *self.calls_total.entry(result(cdr).to_string()).or_default() += 1;
    }

    pub fn write(&self, b2bua: &B2bua<RelayMedia>, health: &Health, cdrs: &CdrWriter, now: Instant) {
        let trunks = b2bua
            .plan()
            .trunks
            .iter()
            .map(|t| TrunkState {
                name: t.name.clone(),
                kind: t.kind.as_str().to_string(),
                address: t.address.to_string(),
                up: !t.options || health.is_alive(&t.name),
                monitored: t.options,
            })
            .collect();
        let stats = cdrs.stats();
        let status = MediationStatus {
            service: "sba-mediation".into(),
            pid: std::process::id(),
            started: self.started,
            written_at_ms: holdfast_runtime::unix_ms(),
            calls: b2bua.active_calls(),
            calls_total: self.calls_total.clone(),
            trunks,
            rtp: b2bua.media().counters(&b2bua.media_sessions(), now),
            cdrs: CdrCounters { records: stats.records, commits: stats.commits, lost: stats.lost },
            commit: cdrs.commit_times(),
            refused: [
                ("not_a_peer", b2bua.strangers()),
                ("max_calls", b2bua.over_capacity()),
                ("not_the_dialog_peer", b2bua.foreign_in_dialog()),
            ]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, n)| (reason.to_string(), n))
                .collect(),
        };
        match serde_json::to_vec(&status) {
            Ok(bytes) => holdfast_status::write_atomic(&self.path, &bytes),
            Err(e) => log::warn!("status file {}: {e}", self.path.display()),
        }
    }
}

/// The result label of an ended call, by its final SIP status.
fn result(cdr: &Cdr) -> &'static str {
    match cdr.status {
        200..=299 => "answered",
        486 | 600 => "busy",
        408 | 480 | 487 => "no-answer",
        401..=404 | 484 | 488 | 603 => "refused",
        _ => "failed",
    }
}
