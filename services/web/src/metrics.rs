//! `/metrics`: the Prometheus text exposition format (version 0.0.4). Names carry their unit
//! (`_seconds`) and counters end in `_total`; a family is left out when the service that
//! would report it has written no snapshot (absent, not zero: Prometheus alerts on absence).
use crate::cdr_upload::UploadCounters;
use crate::view::Snapshots;
use holdfast_status::HistogramSnapshot;
use std::fmt::Write;

pub struct Metrics {
    out: String,
}

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (le, count) in &h.buckets {
            let le = le.to_string();
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, *count as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.sample(&bucket, &l, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }
}

/// Backslash, double quote and newline are escaped in label values.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(s: &Snapshots, registrations: Option<u64>, upload: Option<UploadCounters>) -> String {
    let mut m = Metrics { out: String::with_capacity(8192) };
    if let Some(n) = registrations {
        m.family("sba_registrations", "gauge", "Registered contacts (unexpired bindings) in the store.");
        m.sample("sba_registrations", &[], n as f64);
    }
    if let Some(r) = &s.registrar {
        m.family("sba_mode", "gauge", "The registrar's mode: 1 for the current one.");
        for mode in ["primary", "pass-through", "survival"] {
            m.sample("sba_mode", &[("mode", mode)], f64::from(u8::from(r.mode == mode)));
        }
        if r.wan != "none" {
            m.family("sba_wan_up", "gauge", "Whether the central site answers the WAN probes.");
            m.sample("sba_wan_up", &[], f64::from(u8::from(r.wan == "up")));
        }
        if let Some(c) = &r.wan_counters {
            m.family("sba_wan_transitions_total", "counter", "WAN state changes, either way.");
            m.sample("sba_wan_transitions_total", &[], c.transitions as f64);
            m.family("sba_wan_probes_total", "counter", "WAN probes (SIP OPTIONS) by outcome.");
            m.sample("sba_wan_probes_total", &[("result", "answered")], c.successes as f64);
            m.sample("sba_wan_probes_total", &[("result", "failed")], c.failures as f64);
            m.family("sba_wan_probe_answers_forged_total", "counter", "Answers to WAN probes not from the probed address with its token (ignored).");
            m.sample("sba_wan_probe_answers_forged_total", &[], r.forged_probe_answers as f64);
            m.family("sba_wan_probe_rtt_seconds", "histogram", "Round trip of answered WAN probes.");
            m.histogram("sba_wan_probe_rtt_seconds", &[], &r.probe_rtt);
        }
        m.family("sba_proxy_transactions_active", "gauge", "Requests the branch proxy has in progress.");
        m.sample("sba_proxy_transactions_active", &[], r.proxied_requests as f64);
    }
    if let Some(med) = &s.mediation {
        m.family("sba_calls_active", "gauge", "Calls in progress through sba-mediation.");
        m.sample("sba_calls_active", &[], med.calls.len() as f64);
        m.family("sba_calls_total", "counter", "Calls ended since sba-mediation started, by result.");
        for result in ["answered", "busy", "no-answer", "refused", "failed"] {
            let n = med.calls_total.get(result).copied().unwrap_or(0);
            m.sample("sba_calls_total", &[("result", result)], n as f64);
        }
        m.family("sba_trunk_up", "gauge", "Whether a trunk answers its OPTIONS health checks.");
        for t in &med.trunks {
            m.sample("sba_trunk_up", &[("trunk", &t.name), ("kind", &t.kind)], f64::from(u8::from(t.up)));
        }
        m.family("sba_rtp_packets_relayed_total", "counter", "RTP/RTCP packets relayed.");
        m.sample("sba_rtp_packets_relayed_total", &[], med.rtp.relayed as f64);
        m.family("sba_rtp_packets_dropped_total", "counter", "Packets the relay dropped for any reason.");
        m.sample("sba_rtp_packets_dropped_total", &[], med.rtp.dropped as f64);
        m.family("sba_rtp_packets_dropped_foreign_total", "counter", "Packets dropped for coming from an address that is not the call's party.");
        m.sample("sba_rtp_packets_dropped_foreign_total", &[], med.rtp.dropped_foreign as f64);
        m.family("sba_srtp_packets_auth_failed_total", "counter", "SRTP/SRTCP packets dropped because their authentication tag did not verify.");
        m.sample("sba_srtp_packets_auth_failed_total", &[], med.rtp.srtp_auth_failed as f64);
        m.family("sba_srtp_packets_replayed_total", "counter", "SRTP/SRTCP packets dropped as replayed (an index seen already).");
        m.sample("sba_srtp_packets_replayed_total", &[], med.rtp.srtp_replayed as f64);
        m.family("sba_rtp_packets_lost_total", "counter", "Gaps in the RTP sequence numbers the parties sent.");
        m.sample("sba_rtp_packets_lost_total", &[], med.rtp.lost as f64);
        m.family("sba_cdr_records_total", "counter", "Call records stored.");
        m.sample("sba_cdr_records_total", &[], med.cdrs.records as f64);
    }
    if let Some(g) = &s.gateway {
        let span = g.span.to_string();
        let labels = [("span", span.as_str()), ("type", g.spantype.as_str())];
        m.family("sba_span_alarm", "gauge", "Whether the PRI span reports any alarm (red, yellow, blue, loss of signal...).");
        m.sample("sba_span_alarm", &labels, f64::from(u8::from(g.alarm_bits != 0)));
        m.family("sba_span_in_service", "gauge", "Whether the span is up with its D-channel established.");
        m.sample("sba_span_in_service", &labels, f64::from(u8::from(g.in_service)));
        m.family("sba_span_bchannels", "gauge", "B-channels of the span.");
        m.sample("sba_span_bchannels", &labels, f64::from(g.bchannels));
        m.family("sba_span_bchannels_in_use", "gauge", "B-channels carrying or setting up a call.");
        m.sample("sba_span_bchannels_in_use", &labels, f64::from(g.bchannels_in_use));
    }
    let refused = s.refused();
    if !refused.is_empty() {
        m.family("sba_requests_refused_total", "counter", "SIP requests refused by the trust rules, by service and reason.");
        for (svc, counts) in refused {
            for (reason, n) in counts {
                m.sample("sba_requests_refused_total", &[("service", svc), ("reason", reason)], *n as f64);
            }
        }
    }
    let commits = [("sba-registrar", s.registrar.as_ref().map(|r| &r.commit)), ("sba-mediation", s.mediation.as_ref().map(|m| &m.commit))];
    if commits.iter().any(|(_, h)| h.is_some()) {
        m.family("sba_sqlite_commit_seconds", "histogram", "SQLite group commits (fsynced), by the service that made them.");
        for (svc, h) in commits {
            if let Some(h) = h {
                m.histogram("sba_sqlite_commit_seconds", &[("service", svc)], h);
            }
        }
    }
    if let Some(u) = upload {
        m.family("sba_cdr_upload_pending", "gauge", "Call records not yet accepted by the central site.");
        m.sample("sba_cdr_upload_pending", &[], u.pending as f64);
        m.family("sba_cdr_uploaded_total", "counter", "Call records the central site accepted.");
        m.sample("sba_cdr_uploaded_total", &[], u.uploaded as f64);
        m.family("sba_cdr_upload_failures_total", "counter", "Batches that failed to post (retried with backoff).");
        m.sample("sba_cdr_upload_failures_total", &[], u.failures as f64);
    }
    m.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_status::snapshot::{GatewayStatus, MediationStatus, RegistrarStatus, TrunkState};

    #[test]
    fn families_and_labels_are_well_formed() {
        let registrar = RegistrarStatus { mode: "survival".into(), wan: "down".into(), ..Default::default() };
        let mut mediation = MediationStatus::default();
        mediation.trunks.push(TrunkState { name: "odd\"name\\".into(), kind: "carrier".into(), up: true, ..Default::default() });
        let text = render(&Snapshots { registrar: Some(registrar), mediation: Some(mediation), gateway: None }, Some(3), None);
        assert!(text.contains("sba_mode{mode=\"survival\"} 1\n"), "{text}");
        assert!(text.contains("sba_wan_up 0\n"));
        assert!(text.contains("sba_registrations 3\n"));
        assert!(text.contains("sba_trunk_up{trunk=\"odd\\\"name\\\\\",kind=\"carrier\"} 1\n"), "{text}");
        assert!(text.contains("sba_sqlite_commit_seconds_bucket{service=\"sba-registrar\",le=\"+Inf\"} 0\n"));
        assert!(!text.contains("sba_span_"), "no gateway snapshot, no span families");
    }

    #[test]
    fn refusals_by_service_and_reason() {
        let mut gateway = GatewayStatus::default();
        gateway.refused.insert("not_a_peer".into(), 4);
        let mut registrar = RegistrarStatus::default();
        registrar.refused.insert("caller_not_registered".into(), 2);
        let text = render(&Snapshots { registrar: Some(registrar), mediation: None, gateway: Some(gateway) }, None, None);
        assert!(text.contains("sba_requests_refused_total{service=\"sba-gateway\",reason=\"not_a_peer\"} 4\n"), "{text}");
        assert!(text.contains("sba_requests_refused_total{service=\"sba-registrar\",reason=\"caller_not_registered\"} 2\n"), "{text}");
        assert_eq!(text.matches("# TYPE sba_requests_refused_total counter").count(), 1, "{text}");
    }
}
