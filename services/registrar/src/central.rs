//! The connections to the central proxies over TCP or TLS. A WAN cut is silent: the connection
//! stays open while what we write waits unacknowledged in the kernel, retransmitted ever more
//! rarely (exponential backoff, for minutes), so after the WAN is back the probes queued on it
//! would arrive seconds late and failback with them. Rule: when a probe sent on the current
//! connection to a proxy goes unanswered, that connection is dropped and the next probe opens a
//! new one; a probe lost on an older connection (one already dropped) drops nothing, so each new
//! connection has its probe's whole timeout to connect, handshake and answer.
use holdfast_sip::transport::Protocol;
use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Debug)]
pub struct CentralLinks {
    transport: Protocol,
    /// Per proxy, the first probe sent on its current connection.
    first_probe: HashMap<SocketAddr, u64>,
}

impl CentralLinks {
    pub fn new(transport: Protocol) -> CentralLinks {
        CentralLinks { transport, first_probe: HashMap::new() }
    }

    /// Probe `id` goes out to `proxy` now.
    pub fn sent(&mut self, proxy: SocketAddr, id: u64) {
        if self.transport.is_reliable() {
            self.first_probe.entry(proxy).or_insert(id);
        }
    }

    /// Probe `id` to `proxy` went unanswered: whether to drop the connection to `proxy`.
    pub fn lost(&mut self, proxy: SocketAddr, id: u64) -> bool {
        match self.first_probe.get(&proxy) {
            Some(&first) if id >= first => {
                self.first_probe.remove(&proxy);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> SocketAddr {
        "192.0.2.10:5061".parse().unwrap()
    }

    #[test]
    fn a_connection_is_dropped_once_for_a_probe_lost_on_it_and_never_over_udp() {
        let mut links = CentralLinks::new(Protocol::Tls);
        // Probes 1..=3 pipelined on the first connection; 1 is lost: drop it.
        for id in 1..=3 {
            links.sent(proxy(), id);
        }
        assert!(links.lost(proxy(), 1));
        // 2 and 3 were on the dropped connection too: their loss drops the new one no more.
        links.sent(proxy(), 4);
        assert!(!links.lost(proxy(), 2));
        assert!(!links.lost(proxy(), 3));
        // 4 was the new connection's first probe: lost, it goes as well.
        links.sent(proxy(), 5);
        assert!(links.lost(proxy(), 4));
        assert!(!links.lost(proxy(), 5 - 2), "an older probe again");
        let other: SocketAddr = "192.0.2.11:5061".parse().unwrap();
        assert!(!links.lost(other, 9), "nothing was sent there");

        let mut udp = CentralLinks::new(Protocol::Udp);
        udp.sent(proxy(), 1);
        assert!(!udp.lost(proxy(), 1), "UDP has no connection to drop");
    }
}
