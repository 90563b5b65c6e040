//! OPTIONS health checks of the trunks, sans-IO: each trunk is probed every interval; one
//! that leaves `dead_after` probes in a row unanswered (within the interval) is dead, and is
//! skipped by calls until it answers again. Any response counts as an answer: a carrier that
//! says 403 or 405 to OPTIONS is still there.
use holdfast_sip::message::{HeaderName, Method, Request, Uri};
use holdfast_sip::transaction::{Event, Transactions, TxEvent, TxId};
use holdfast_sip::transport::Protocol;
use holdfast_sip::Ids;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Probed {
    name: String,
    dest: SocketAddr,
    transport: Protocol,
    failures: u32,
    alive: bool,
    next_probe: Instant,
}

pub struct Health {
    trunks: Vec<Probed>,
    interval: Duration,
    dead_after: u32,
    /// Outstanding probes: trunk index and the deadline for its answer.
    pending: HashMap<TxId, (usize, Instant)>,
    changes: VecDeque<(String, bool)>,
    local: SocketAddr,
    ids: Ids,
}

impl Health {
    /// Every trunk starts alive (calls need not wait for a probe); the first probe goes out one
    /// interval after start.
    pub fn new(
        trunks: impl IntoIterator<Item = (String, SocketAddr, Protocol)>,
        interval: Duration,
        dead_after: u32,
        local: SocketAddr,
        ids: Ids,
        now: Instant,
    ) -> Health {
        let trunks = trunks
            .into_iter()
            .map(|(name, dest, transport)| Probed { name, dest, transport, failures: 0, alive: true, next_probe: now + interval })
            .collect();
        Health { trunks, interval, dead_after, pending: HashMap::new(), changes: VecDeque::new(), local, ids }
    }

    pub fn is_alive(&self, name: &str) -> bool {
        self.trunks.iter().any(|t| t.name == name && t.alive)
    }

    /// A trunk whose state changed, and its new state.
    pub fn poll_change(&mut self) -> Option<(String, bool)> {
        self.changes.pop_front()
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        let probes = self.trunks.iter().map(|t| t.next_probe);
        probes.chain(self.pending.values().map(|(_, d)| *d)).min()
    }

    pub fn handle_timeout(&mut self, txns: &mut Transactions, now: Instant) {
        let late: Vec<TxId> = self.pending.iter().filter(|(_, (_, d))| *d <= now).map(|(id, _)| *id).collect();
        for id in late {
            if let Some((i, _)) = self.pending.remove(&id) {
                self.outcome(i, false);
            }
        }
        for i in 0..self.trunks.len() {
            if self.trunks[i].next_probe > now {
                continue;
            }
            let t = &mut self.trunks[i];
            t.next_probe = now + self.interval;
            let probe = options(t.dest, t.transport, self.local, &mut self.ids);
            match txns.send_request(probe, t.dest, t.transport, now) {
                Ok(id) => {
                    self.pending.insert(id, (i, now + self.interval));
                }
                Err(e) => {
                    log::warn!("OPTIONS to trunk {} not sent: {e}", t.name);
                    self.outcome(i, false);
                }
            }
        }
    }

    /// A client transaction event; false when it is not a probe's.
    pub fn on_event(&mut self, event: &Event) -> bool {
        let Some(&(i, _)) = self.pending.get(&event.id) else { return false };
        match &event.event {
            TxEvent::Response(r) if r.status >= 200 => {
                self.pending.remove(&event.id);
                self.outcome(i, true);
            }
            TxEvent::TimedOut(_) | TxEvent::TransportError => {
                self.pending.remove(&event.id);
                self.outcome(i, false);
            }
            TxEvent::Terminated => {
                self.pending.remove(&event.id);
            }
            _ => {}
        }
        true
    }

    fn outcome(&mut self, i: usize, answered: bool) {
        let t = &mut self.trunks[i];
        t.failures = if answered { 0 } else { t.failures + 1 };
        let alive = answered || t.alive && t.failures < self.dead_after;
        if alive != t.alive {
            t.alive = alive;
            log::warn!("trunk {} is {}", t.name, if alive { "alive again" } else { "dead" });
            self.changes.push_back((t.name.clone(), alive));
        }
    }
}

fn options(dest: SocketAddr, transport: Protocol, local: SocketAddr, ids: &mut Ids) -> Request {
    let mut r = Request::new(Method::OPTIONS, Uri::parse(&format!("sip:{dest}")).unwrap_or_else(|_| Uri::Other(format!("sip:{dest}"))));
    let h = &mut r.headers;
    h.add(HeaderName::Via, format!("SIP/2.0/{transport} {local};branch={};rport", ids.branch()));
    h.add(HeaderName::MaxForwards, "70");
    h.add(HeaderName::From, format!("<sip:mediation@{local}>;tag={}", ids.tag()));
    h.add(HeaderName::To, format!("<sip:{dest}>"));
    h.add(HeaderName::CallId, ids.call_id(local.ip()));
    h.add(HeaderName::CSeq, "1 OPTIONS");
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::transaction::{TimerConfig, Transmit};

    fn drain(txns: &mut Transactions, health: &mut Health) -> Vec<holdfast_sip::message::Request> {
        let mut sent = vec![];
        while let Some(t) = txns.poll_transmit() {
            if let Transmit::Request { request, .. } = t {
                sent.push(std::sync::Arc::unwrap_or_clone(request));
            }
        }
        while let Some(e) = txns.poll_event() {
            health.on_event(&e);
        }
        sent
    }

    #[test]
    fn unanswered_probes_kill_a_trunk_and_one_answer_revives_it() {
        let now = Instant::now();
        let mut txns = Transactions::new(TimerConfig::default());
        let dest: SocketAddr = "127.0.0.1:5080".parse().unwrap();
        let local = "127.0.0.1:5070".parse().unwrap();
        let start = now - Duration::from_secs(1);
        let mut h = Health::new([("a".to_string(), dest, Protocol::Udp)], Duration::from_secs(1), 2, local, Ids::seeded(1), start);
        h.handle_timeout(&mut txns, start);
        assert!(drain(&mut txns, &mut h).is_empty(), "no probe before the first interval");
        h.handle_timeout(&mut txns, now);
        let probes = drain(&mut txns, &mut h);
        assert_eq!(probes.len(), 1);
        assert_eq!(probes[0].method, Method::OPTIONS);
        // Two intervals without an answer: dead.
        for s in 1..=2 {
            let t = now + Duration::from_secs(s);
            txns.handle_timeout(t);
            h.handle_timeout(&mut txns, t);
            drain(&mut txns, &mut h);
        }
        assert!(!h.is_alive("a"));
        assert_eq!(h.poll_change(), Some(("a".to_string(), false)));
        // The next probe is answered (even 405): alive again.
        let t = now + Duration::from_secs(3);
        h.handle_timeout(&mut txns, t);
        let probe = drain(&mut txns, &mut h).pop().unwrap();
        txns.on_response(probe.response(405), t);
        drain(&mut txns, &mut h);
        assert!(h.is_alive("a"));
        assert_eq!(h.poll_change(), Some(("a".to_string(), true)));
        assert_eq!(h.poll_change(), None);
    }
}
