//! Trunks and their health (sba-mediation), and the PRI span (sba-gateway).
use super::{ago, esc, missing};
use crate::view::Snapshots;
use std::fmt::Write;

pub fn trunks(s: &Snapshots) -> String {
    let Some(m) = &s.mediation else { return missing("sba-mediation") };
    let mut out = String::from(
        "<table id=\"trunks\"><thead><tr><th>trunk</th><th>kind</th><th>address</th><th>health</th></tr></thead><tbody>",
    );
    for t in &m.trunks {
        let health = match (t.monitored, t.up) {
            (false, _) => "<span>not monitored</span>",
            (true, true) => "<span class=\"good\">up</span>",
            (true, false) => "<span class=\"bad\">down</span>",
        };
        let _ = write!(
            out,
            "<tr data-trunk=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{health}</td></tr>",
            esc(&t.name),
            esc(&t.name),
            esc(&t.kind),
            esc(&t.address)
        );
    }
    let _ = write!(out, "</tbody></table><p>status written {} ago</p>", ago(m.written_at_ms));
    out
}

pub fn span(s: &Snapshots) -> String {
    let Some(g) = &s.gateway else { return missing("sba-gateway") };
    let state = match (&g.waiting_for_span, g.in_service) {
        (Some(why), _) => format!("<span id=\"span-state\" class=\"bad\">waiting for span</span> ({}; looked for every second)", esc(why)),
        (None, true) => "<span id=\"span-state\" class=\"good\">in service</span>".into(),
        (None, false) => "<span id=\"span-state\" class=\"bad\">out of service</span>".into(),
    };
    let alarm_class = if g.alarm_bits == 0 { "good" } else { "bad" };
    let simulated = if g.simulated { " (simulated: no card, its far end runs inside sba-gateway)" } else { "" };
    let used = g.bchannels_in_use.min(g.bchannels);
    let cells: String = (0..g.bchannels).map(|i| if i < used { "<i class=\"busy\"></i>" } else { "<i></i>" }).collect();
    format!(
        "<section class=\"cards\"><div class=\"card\"><h2>Span {}</h2><p class=\"big\">{}</p><p>{}{simulated}</p></div>\
         <div class=\"card\"><h2>Alarms</h2><p id=\"alarms\" class=\"big {alarm_class}\">{}</p></div>\
         <div class=\"card\"><h2>B-channels in use</h2><p id=\"bchannels\" class=\"big\">{used} / {}</p><div class=\"channels\">{cells}</div></div></section>\
         <p>status written {} ago</p>",
        g.span,
        esc(&g.spantype),
        state,
        esc(&g.alarms),
        g.bchannels,
        ago(g.written_at_ms)
    )
}
