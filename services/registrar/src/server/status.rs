//! The registrar's state for `sbactl status`: a small JSON file beside the database, replaced
//! atomically (write, then rename) whenever the WAN state changes and every few seconds.
use crate::routing::Mode;
use crate::wan::WanCounters;
use std::path::{Path, PathBuf};

pub struct StatusFile {
    path: PathBuf,
    started: u64,
    since: u64,
}

impl StatusFile {
    /// `<db>.status.json`.
    pub fn beside(db: &Path, now: u64) -> StatusFile {
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".status.json");
        StatusFile { path: db.with_file_name(name), started: now, since: now }
    }

    /// The WAN changed state at `now`.
    pub fn changed(&mut self, now: u64) {
        self.since = now;
    }

    /// Whether the last run wrote down a dead WAN (a restart during an outage stays in
    /// survival until the WAN proves itself, instead of relaying into the void).
    pub fn was_down(&self) -> bool {
        std::fs::read_to_string(&self.path).is_ok_and(|t| t.contains("\"wan\":\"down\""))
    }

    pub fn write(&self, mode: Mode, wan: Option<WanCounters>, bindings: usize, calls: usize) {
        let (mode, wan_state) = match mode {
            Mode::Standalone => ("primary", "none"),
            Mode::Normal => ("pass-through", "up"),
            Mode::Survival => ("survival", "down"),
        };
        let forged = wan.map_or(0, |c| c.forged);
        let counters = wan.map_or_else(
            || "null".to_string(),
            |c| {
                format!(
                    "{{\"transitions\":{},\"probes_sent\":{},\"successes\":{},\"failures\":{},\"late_answers\":{}}}",
                    c.transitions, c.probes_sent, c.successes, c.failures, c.ignored_responses
                )
            },
        );
        let text = format!(
            "{{\"service\":\"sba-registrar\",\"pid\":{},\"mode\":\"{mode}\",\"wan\":\"{wan_state}\",\
             \"since\":{},\"started\":{},\"bindings\":{bindings},\"proxied_requests\":{calls},\"forged_probe_answers\":{forged},\"wan_counters\":{counters}}}\n",
            std::process::id(),
            self.since,
            self.started,
        );
        let tmp = self.path.with_extension("json.tmp");
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            log::warn!("status file {}: {e}", self.path.display());
        }
    }
}
