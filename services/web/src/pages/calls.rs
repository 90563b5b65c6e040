//! Calls in progress (sba-mediation's snapshot) and recent call records (the store), with the
//! records as CSV.
use super::{ago, esc, missing, utc};
use crate::view::Snapshots;
use holdfast_store::cdr_text::{csv_row, CSV_HEADER};
use holdfast_store::StoredCdr;
use std::fmt::Write;

pub fn calls(s: &Snapshots) -> String {
    let Some(m) = &s.mediation else { return missing("sba-mediation") };
    let count = match m.calls.len() {
        0 => "No calls".to_string(),
        1 => "1 call".to_string(),
        n => format!("{n} calls"),
    };
    let mut out = format!(
        "<p id=\"active\">{count} in progress</p><table id=\"calls\"><thead><tr><th>caller</th><th>callee</th><th>trunk</th>\
         <th>state</th><th>started</th></tr></thead><tbody>"
    );
    for c in &m.calls {
        let state = if c.answered { "talking" } else { "setting up" };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{state}</td><td>{} ago</td></tr>",
            esc(&c.caller),
            esc(&c.callee),
            esc(&c.trunk),
            ago(c.setup_at_ms)
        );
    }
    out.push_str("</tbody></table><h2>Calls ended since sba-mediation started</h2>");
    if m.calls_total.is_empty() {
        out.push_str("<p>None yet.</p>");
    } else {
        out.push_str("<table><tbody>");
        for (result, n) in &m.calls_total {
            let _ = write!(out, "<tr><th>{}</th><td>{n}</td></tr>", esc(result));
        }
        out.push_str("</tbody></table>");
    }
    let r = &m.rtp;
    let rows = [
        ("relayed", "relayed", r.relayed),
        ("dropped", "dropped (any reason)", r.dropped),
        ("dropped-foreign", "of those, from a stranger's address", r.dropped_foreign),
        ("lost", "lost on the way (sequence gaps)", r.lost),
        ("srtp-auth-failed", "SRTP failing authentication", r.srtp_auth_failed),
        ("srtp-replayed", "SRTP replayed", r.srtp_replayed),
    ];
    out.push_str("<h2>RTP through the relay (packets)</h2><table id=\"rtp\"><tbody>");
    for (id, label, n) in rows {
        let _ = write!(out, "<tr><th>{label}</th><td id=\"rtp-{id}\">{n}</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

pub fn cdrs(records: &[StoredCdr]) -> String {
    let mut out = format!(
        "<p><a id=\"csv\" href=\"/cdrs.csv\" download>Download all call records (CSV)</a></p>\
         <p>The {} most recent calls, newest first.</p><table id=\"cdrs\"><thead><tr><th>set up (UTC)</th><th>direction</th>\
         <th>caller</th><th>dialled</th><th>trunk</th><th>talk</th><th>status</th><th>end</th></tr></thead><tbody>",
        records.len()
    );
    for StoredCdr { id, cdr: c } in records {
        let talk = c.answered_at.map_or("not answered".to_string(), |a| format!("{:.1} s", (c.ended_at - a) as f64 / 1000.0));
        let _ = write!(
            out,
            "<tr data-id=\"{id}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{talk}</td><td>{}{}</td><td>{}</td></tr>",
            utc(u64::try_from(c.setup_at).unwrap_or(0)),
            esc(&c.direction),
            esc(&c.caller),
            esc(&c.callee_dialled),
            esc(&c.trunk),
            c.status,
            c.q850.map(|q| format!(" (Q.850 {q})")).unwrap_or_default(),
            esc(&c.end_cause)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Every record, oldest first, as `sbactl cdr --csv` prints them.
pub fn cdr_csv(records: &[holdfast_store::Cdr]) -> String {
    let mut out = String::with_capacity(64 + records.len() * 200);
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for c in records {
        out.push_str(&csv_row(c));
        out.push_str("\r\n");
    }
    out
}
