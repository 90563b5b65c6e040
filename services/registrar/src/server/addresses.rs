//! Which of our addresses faces a given peer. The appliance sits on several networks (phones'
//! LAN, the WAN, the PSTN side); a Via or Record-Route must name the address the next hop can
//! reach, which is the one the kernel routes from.
use holdfast_sip::transport::Protocol;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

pub struct Addresses {
    /// UDP and TCP.
    listen: SocketAddr,
    tls: Option<SocketAddr>,
    routed: HashMap<IpAddr, IpAddr>,
}

impl Addresses {
    pub fn new(listen: SocketAddr, tls: Option<SocketAddr>) -> Addresses {
        Addresses { listen, tls, routed: HashMap::new() }
    }

    /// Our address towards `peer` where it reaches us over `transport`: what a Via, Path or
    /// Record-Route names (over TLS our TLS listener, when there is one).
    pub fn facing(&mut self, peer: IpAddr, transport: Protocol) -> SocketAddr {
        match (transport, self.tls) {
            (Protocol::Tls, Some(tls)) if !tls.ip().is_unspecified() => tls,
            (Protocol::Tls, Some(tls)) => SocketAddr::new(self.local_for(peer), tls.port()),
            _ => SocketAddr::new(self.local_for(peer), self.listen.port()),
        }
    }

    /// Our address towards `peer`: the listening address when it is a specific one, else the
    /// source address the kernel picks for `peer` (found once per peer with a connected UDP
    /// socket, which sends nothing).
    pub fn local_for(&mut self, peer: IpAddr) -> IpAddr {
        if !self.listen.ip().is_unspecified() {
            return self.listen.ip();
        }
        if let Some(ip) = self.routed.get(&peer) {
            return *ip;
        }
        let bind: SocketAddr = if peer.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }
            .unwrap_or(self.listen);
        let ip = UdpSocket::bind(bind)
            .and_then(|s| s.connect(SocketAddr::new(peer, 9)).and_then(|()| s.local_addr()))
            .map(|a| a.ip())
            .unwrap_or(if peer.is_loopback() { peer } else { self.listen.ip() });
        self.routed.insert(peer, ip);
        ip
    }

    /// Every address of ours seen so far, with our ports: for Route stripping and loop checks.
    pub fn ours(&self) -> Vec<SocketAddr> {
        let listening = || std::iter::once(self.listen).chain(self.tls);
        let mut v: Vec<SocketAddr> =
            self.routed.values().flat_map(|ip| listening().map(|l| SocketAddr::new(*ip, l.port()))).collect();
        v.extend(listening());
        v.sort();
        v.dedup();
        v
    }

    pub fn is_ours(&self, addr: SocketAddr) -> bool {
        std::iter::once(self.listen).chain(self.tls).any(|l| {
            addr == l || (addr.port() == l.port() && self.routed.values().any(|ip| *ip == addr.ip()))
        })
    }
}
