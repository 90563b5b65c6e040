//! The overview: mode and WAN state (with the probes' round trips drawn), the services, what
//! their trust rules refused.
use super::{ago, esc, missing, utc};
use crate::view::{fresh, Snapshots};
use holdfast_status::snapshot::ProbeSample;
use std::fmt::Write;

pub fn overview(s: &Snapshots, registrations: usize) -> String {
    let mut out = String::new();
    match &s.registrar {
        Some(r) => {
            let mode_class = match r.mode.as_str() {
                "survival" => "bad",
                "pass-through" | "primary" => "good",
                _ => "",
            };
            let _ = write!(
                out,
                "<section class=\"cards\"><div class=\"card\"><h2>Mode</h2><p id=\"mode\" class=\"big {mode_class}\">{}</p>\
                 <p>since {} UTC ({} ago)</p></div>",
                esc(&r.mode),
                utc(r.since * 1000),
                ago(r.since * 1000)
            );
            let wan = match r.wan.as_str() {
                "up" => "<span class=\"good\">up</span>",
                "down" => "<span class=\"bad\">down</span>",
                _ => "no central site",
            };
            let _ = write!(out, "<div class=\"card\"><h2>WAN</h2><p id=\"wan\" class=\"big\">{wan}</p>");
            if let Some(c) = &r.wan_counters {
                let _ = write!(
                    out,
                    "<p>{} probes, {} answered, {} failed; {} changes</p>",
                    c.probes_sent, c.successes, c.failures, c.transitions
                );
            }
            let _ = write!(
                out,
                "</div><div class=\"card\"><h2>Registrations</h2><p id=\"registrations\" class=\"big\">{registrations}</p>\
                 <p><a href=\"/registrations\">search</a></p></div></section>"
            );
            if !r.probes.is_empty() {
                out.push_str("<h2>WAN probe round trips</h2>");
                out.push_str(&rtt_chart(&r.probes));
            }
        }
        None => out.push_str(&missing("sba-registrar")),
    }
    out.push_str("<h2>Services</h2><table><thead><tr><th>service</th><th>state</th><th>pid</th><th>status written</th></tr></thead><tbody>");
    let rows = [
        ("sba-registrar", s.registrar.as_ref().map(|r| (r.pid, r.written_at_ms))),
        ("sba-mediation", s.mediation.as_ref().map(|m| (m.pid, m.written_at_ms))),
        ("sba-gateway", s.gateway.as_ref().map(|g| (g.pid, g.written_at_ms))),
    ];
    for (name, st) in rows {
        let _ = match st {
            Some((pid, at)) if fresh(at) => write!(out, "<tr><td>{name}</td><td class=\"good\">running</td><td>{pid}</td><td>{} ago</td></tr>", ago(at)),
            Some((pid, at)) => write!(out, "<tr><td>{name}</td><td class=\"bad\">silent</td><td>{pid}</td><td>{} ago</td></tr>", ago(at)),
            None => write!(out, "<tr><td>{name}</td><td class=\"bad\">no status</td><td></td><td></td></tr>"),
        };
    }
    out.push_str("</tbody></table>");
    out.push_str(&refused(s));
    out
}

/// Requests the services refused, by reason: someone on the network is trying something.
fn refused(s: &Snapshots) -> String {
    let rows: Vec<(&str, &String, &u64)> =
        s.refused().into_iter().flat_map(|(svc, counts)| counts.iter().filter(|(_, n)| **n > 0).map(move |(r, n)| (svc, r, n))).collect();
    let mut out = String::from("<h2>Refused requests</h2>");
    if rows.is_empty() {
        out.push_str("<p id=\"refused-none\">None since the services started.</p>");
        return out;
    }
    out.push_str("<table id=\"refused\"><thead><tr><th>service</th><th>reason</th><th>requests</th></tr></thead><tbody>");
    for (svc, reason, n) in rows {
        let reason = esc(reason);
        let _ = write!(out, "<tr data-service=\"{svc}\" data-reason=\"{reason}\"><td>{svc}</td><td>{reason}</td><td class=\"count\">{n}</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// The probes' round trips as an inline SVG: one bar per probe, newest on the right, a red
/// mark where a probe went unanswered. No script or external image.
fn rtt_chart(probes: &[ProbeSample]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let max = probes.iter().filter_map(|p| p.rtt_ms).fold(1.0_f64, f64::max);
    let step = W / probes.len().max(60) as f64;
    let mut bars = String::new();
    for (i, p) in probes.iter().enumerate() {
        let x = W - (probes.len() - i) as f64 * step;
        let _ = match p.rtt_ms {
            Some(ms) => {
                let h = (ms / max * (H - 10.0)).max(1.0);
                write!(bars, "<rect class=\"ok\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{} {ms:.1} ms</title></rect>", H - h, step * 0.8, esc(&p.target))
            }
            None => write!(bars, "<rect class=\"lost\" x=\"{x:.1}\" y=\"0\" width=\"{:.1}\" height=\"{H}\"><title>{} unanswered</title></rect>", step * 0.8, esc(&p.target)),
        };
    }
    let answered: Vec<f64> = probes.iter().filter_map(|p| p.rtt_ms).collect();
    let last = answered.last().map_or("none".to_string(), |ms| format!("{ms:.1} ms"));
    let lost = probes.len() - answered.len();
    format!(
        "<figure class=\"chart\"><svg id=\"rtt\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"WAN probe round trips\">{bars}</svg>\
         <figcaption>last {} probes: latest {last}, slowest {max:.1} ms, {lost} unanswered</figcaption></figure>",
        probes.len()
    )
}
