//! The WAN monitor on the wire: probes out, verdicts in, and what a change of state does —
//! REGISTERs waiting on a dead WAN are answered from the cache at once.
use super::Server;
use crate::wan::{options_request, WanEvent};
use holdfast_sip::driver::Outbound;
use holdfast_sip::transport::Protocol;
use std::time::Instant;

impl Server {
    /// The probes due, into the outbox.
    pub(super) fn queue_probes(&mut self, now: Instant) {
        let Some(wan) = &mut self.wan else { return };
        let mut probes = Vec::new();
        while let Some(p) = wan.poll_probe(now) {
            probes.push(p);
        }
        for probe in probes {
            let transport = self.central_transport();
            let local = self.addresses.facing(probe.target.ip(), transport);
            let req = options_request(&probe, local, transport, &self.domain);
            self.status.probe_sent(probe.id, probe.target, now);
            self.links.sent(probe.target, probe.id);
            self.outbox.push_back(Outbound::Request { request: req, dest: probe.target, transport });
        }
        self.wan_events();
    }

    pub(super) fn wan_timeout(&mut self, now: Instant) {
        if let Some(wan) = &mut self.wan {
            wan.handle_timeout(now);
            let transport = self.central.as_ref().map_or(Protocol::Udp, |c| c.transport.protocol());
            while let Some((id, proxy)) = wan.poll_lost() {
                if self.links.lost(proxy, id) {
                    log::debug!("WAN probe {id} to {proxy} lost: a new {transport} connection for the next");
                    self.transport.drop_connection(proxy, transport);
                }
            }
        }
        self.wan_events();
    }

    pub(super) fn wan_events(&mut self) {
        let Some(wan) = &mut self.wan else { return };
        let mut events = Vec::new();
        while let Some(e) = wan.poll_event() {
            events.push(e);
        }
        for e in events {
            match e {
                WanEvent::Down { .. } => {
                    log::warn!("WAN down: central site unreachable; survival mode");
                    self.status.changed(super::unix_now());
                    self.answer_pending_relays_locally();
                    self.reroute_stranded(Instant::now());
                }
                WanEvent::Up { .. } => {
                    log::warn!("WAN up: central site reachable again; failing back to pass-through");
                    self.status.changed(super::unix_now());
                }
            }
            self.write_status();
        }
    }

    /// REGISTERs still waiting for the central site will not hear from it: serve them as the
    /// survival registrar would.
    fn answer_pending_relays_locally(&mut self) {
        let pending: Vec<_> = self.relays.drain().map(|(_, r)| r).collect();
        let now = Instant::now();
        for relay in pending {
            let (id, request, aor, source) = relay.into_parts();
            self.register_in_survival(id, request, &aor, source, now);
        }
    }

    pub(super) fn write_status(&mut self) {
        let mode = self.mode();
        let counters = self.wan.as_ref().map(|w| w.counters());
        let bindings = self.registrar.binding_count();
        let mut trust = self.counters;
        trust.capped_registers = self.registrar.capped();
        let mut refused = trust.by_reason();
        let guard = self.guard.counters;
        let tcp = self.transport.tcp_stats();
        refused.extend([
            ("source_bans".to_string(), guard.bans),
            ("banned_source_requests".to_string(), guard.dropped),
            ("banned_source_challenges".to_string(), guard.challenged),
            ("tcp_connections_over_limit".to_string(), tcp.refused),
            ("tcp_idle_closed".to_string(), tcp.idle_closed),
        ]);
        self.status.write(mode, counters, refused, bindings, self.proxy.len(), self.writer.commit_times());
    }
}
