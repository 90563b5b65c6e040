//! sba-gateway's status snapshot (`[gateway].status_file`) for sba-web and its metrics: the
//! span's alarms and service state and the B-channels in use, asked of the trunk task every
//! second and written atomically.
use std::path::PathBuf;
use std::time::Duration;

use holdfast_status::snapshot::GatewayStatus;

use crate::q931::Layout;
use crate::trunk::StatusSource;

const EVERY: Duration = Duration::from_secs(1);

/// What the snapshot says about the span whatever its state.
pub struct SpanInfo {
    pub span: i32,
    pub layout: Layout,
    pub simulated: bool,
}

/// Writes the snapshot until the trunk stops.
pub async fn run(trunk: StatusSource, path: PathBuf, info: SpanInfo) {
    let started = holdfast_runtime::unix_ms() / 1000;
    let bchannels = info.layout.bchannels().count() as u32;
    let spantype = match info.layout {
        Layout::E1 => "E1",
        Layout::T1 => "T1",
    };
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let Ok(s) = trunk.status().await else { return };
        let free = u32::try_from(s.free_channels).unwrap_or(bchannels);
        let status = GatewayStatus {
            service: "sba-gateway".into(),
            pid: std::process::id(),
            started,
            written_at_ms: holdfast_runtime::unix_ms(),
            span: info.span,
            spantype: spantype.into(),
            simulated: info.simulated,
            in_service: s.in_service,
            alarms: s.alarms.to_string(),
            alarm_bits: s.alarms.0,
            bchannels,
            bchannels_in_use: bchannels.saturating_sub(free),
        };
        match serde_json::to_vec(&status) {
            Ok(bytes) => holdfast_status::write_atomic(&path, &bytes),
            Err(e) => log::warn!("status file {}: {e}", path.display()),
        }
    }
}
