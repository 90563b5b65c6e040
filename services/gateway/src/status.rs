//! sba-gateway's status snapshot (`[gateway].status_file`) for sba-web and its metrics: the
//! span's alarms and service state and the B-channels in use, asked of the trunk task every
//! second and written atomically, with the SIP refused for not coming from mediation; while the
//! DAHDI span is missing, why it is.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use holdfast_status::snapshot::GatewayStatus;

use crate::alarms::Alarms;
use crate::edge::Strangers;
use crate::q931::Layout;
use crate::trunk::StatusSource;

const EVERY: Duration = Duration::from_secs(1);

/// What the snapshot says about the span whatever its state.
pub struct SpanInfo {
    pub span: i32,
    pub layout: Layout,
    pub simulated: bool,
    /// Unix seconds the service started.
    pub started: u64,
}

impl SpanInfo {
    fn snapshot(&self, in_service: bool, alarms: Alarms, free: Option<usize>, strangers: u64, waiting_for_span: Option<String>) -> GatewayStatus {
        let bchannels = self.layout.bchannels().count() as u32;
        let free = free.map_or(bchannels, |f| u32::try_from(f).unwrap_or(bchannels));
        GatewayStatus {
            service: "sba-gateway".into(),
            pid: std::process::id(),
            started: self.started,
            written_at_ms: holdfast_runtime::unix_ms(),
            span: self.span,
            spantype: match self.layout {
                Layout::E1 => "E1",
                Layout::T1 => "T1",
            }
            .into(),
            simulated: self.simulated,
            in_service,
            alarms: alarms.to_string(),
            alarm_bits: alarms.0,
            bchannels,
            bchannels_in_use: bchannels.saturating_sub(free),
            // The reason sba-mediation names the same refusal by.
            refused: (strangers > 0).then(|| ("not_a_peer".to_string(), strangers)).into_iter().collect::<BTreeMap<_, _>>(),
            waiting_for_span,
        }
    }
}

/// Writes the snapshot until the trunk stops.
pub async fn run(trunk: StatusSource, strangers: Strangers, path: PathBuf, info: SpanInfo) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let Ok(s) = trunk.status().await else { return };
        write(&path, &info.snapshot(s.in_service, s.alarms, Some(s.free_channels), strangers.get(), None));
    }
}

/// One snapshot while the span cannot be opened, for `reason`: out of service, not open.
pub fn waiting(path: &Path, info: &SpanInfo, reason: &str) {
    write(path, &info.snapshot(false, Alarms::NOTOPEN, None, 0, Some(reason.to_string())));
}

fn write(path: &Path, status: &GatewayStatus) {
    match serde_json::to_vec(status) {
        Ok(bytes) => holdfast_status::write_atomic(path, &bytes),
        Err(e) => log::warn!("status file {}: {e}", path.display()),
    }
}
