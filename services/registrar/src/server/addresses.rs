//! Which of our addresses faces a given peer. The appliance sits on several networks (phones'
//! LAN, the WAN, the PSTN side); a Via or Record-Route must name the address the next hop can
//! reach, which is the one the kernel routes from.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

pub struct Addresses {
    listen: SocketAddr,
    routed: HashMap<IpAddr, IpAddr>,
}

impl Addresses {
    pub fn new(listen: SocketAddr) -> Addresses {
        Addresses { listen, routed: HashMap::new() }
    }

    pub fn port(&self) -> u16 {
        self.listen.port()
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

    /// Every address of ours seen so far, with our port: for Route stripping and loop checks.
    pub fn ours(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self.routed.values().map(|ip| SocketAddr::new(*ip, self.listen.port())).collect();
        v.push(self.listen);
        v.sort();
        v.dedup();
        v
    }

    pub fn is_ours(&self, addr: SocketAddr) -> bool {
        addr == self.listen
            || (addr.port() == self.listen.port() && self.routed.values().any(|ip| *ip == addr.ip()))
    }
}
