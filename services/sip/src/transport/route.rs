//! Where a response goes, read from its top Via (RFC 3261 §18.2.2, RFC 3581 §4).
use super::Protocol;
use crate::message::via::RawVia;
use crate::message::uri::RawHost;
use std::net::{IpAddr, SocketAddr};

/// An address, or a name still to resolve (a sent-by or maddr that is a domain name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Addr(SocketAddr),
    Name(String, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRoute {
    pub transport: Protocol,
    /// Where the request came from: the peer of the connection to reuse (reliable), or the
    /// datagram destination (unreliable).
    pub dest: Destination,
    /// Reliable only: where to connect when that connection is gone (received IP, sent-by port).
    pub reconnect: Option<Destination>,
}

/// The transport a Via names, if we serve it.
fn via_protocol(via: &RawVia) -> Option<Protocol> {
    [Protocol::Udp, Protocol::Tcp, Protocol::Tls].into_iter().find(|p| via.transport.eq_ignore_ascii_case(p.as_str()))
}

/// The sent-by of a Via as an address (the port defaulting by transport), when it is one.
pub(crate) fn sent_by_addr(via: &RawVia) -> Option<SocketAddr> {
    let port = via.port.unwrap_or(via_protocol(via)?.default_port());
    match host_destination(via.host, port) {
        Destination::Addr(addr) => Some(addr),
        Destination::Name(..) => None,
    }
}

/// None for a transport we do not serve (SCTP, WS, ...).
pub(crate) fn response_route(via: &RawVia) -> Option<ResponseRoute> {
    let transport = via_protocol(via)?;
    let [rport, received, maddr] = via.params(["rport", "received", "maddr"]).map(Option::flatten);
    let sent_by_port = via.port.unwrap_or(transport.default_port());
    let rport = rport.and_then(|p| p.parse::<u16>().ok());
    let received = received.and_then(|r| r.parse::<IpAddr>().ok());
    let at = |port: u16| match received {
        Some(ip) => Destination::Addr(SocketAddr::new(ip, port)),
        None => host_destination(via.host, port),
    };
    let route = match transport {
        Protocol::Tcp | Protocol::Tls => {
            ResponseRoute { transport, dest: at(rport.unwrap_or(sent_by_port)), reconnect: Some(at(sent_by_port)) }
        }
        Protocol::Udp => {
            let dest = match maddr {
                Some(maddr) => match maddr.parse::<IpAddr>() {
                    Ok(ip) => Destination::Addr(SocketAddr::new(ip, sent_by_port)),
                    Err(_) => Destination::Name(maddr.to_string(), sent_by_port),
                },
                None => at(rport.unwrap_or(sent_by_port)),
            };
            ResponseRoute { transport, dest, reconnect: None }
        }
    };
    Some(route)
}

fn host_destination(host: RawHost, port: u16) -> Destination {
    match host {
        RawHost::V4(ip) => Destination::Addr(SocketAddr::new(IpAddr::V4(ip), port)),
        RawHost::V6(ip) => Destination::Addr(SocketAddr::new(IpAddr::V6(ip), port)),
        RawHost::Domain(name) => Destination::Name(name.to_string(), port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(via: &str) -> ResponseRoute {
        response_route(&RawVia::scan(via).unwrap()).unwrap()
    }

    fn addr(s: &str) -> Destination {
        Destination::Addr(s.parse().unwrap())
    }

    #[test]
    fn udp_uses_received_and_rport() {
        assert_eq!(route("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport=40000;received=192.0.2.1").dest, addr("192.0.2.1:40000"));
        assert_eq!(route("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=192.0.2.1").dest, addr("192.0.2.1:5070"));
        assert_eq!(route("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1").dest, addr("10.0.0.1:5060"));
        assert_eq!(route("SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK1").dest, addr("[2001:db8::1]:5062"));
        assert_eq!(
            route("SIP/2.0/UDP phone.example.com;branch=z9hG4bK1").dest,
            Destination::Name("phone.example.com".into(), 5060)
        );
    }

    #[test]
    fn udp_maddr_wins() {
        let r = route("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;maddr=239.255.255.1;received=192.0.2.1;rport=4");
        assert_eq!(r.dest, addr("239.255.255.1:5070"));
    }

    #[test]
    fn tcp_reuses_the_connection_then_reconnects_to_sent_by_port() {
        let r = route("SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK1;rport=40000;received=192.0.2.1");
        assert_eq!(r.transport, Protocol::Tcp);
        assert_eq!(r.dest, addr("192.0.2.1:40000"));
        assert_eq!(r.reconnect, Some(addr("192.0.2.1:5070")));
    }

    #[test]
    fn tls_reuses_the_connection_then_reconnects_to_5061() {
        let r = route("SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK1;rport=40000;received=192.0.2.1");
        assert_eq!(r.transport, Protocol::Tls);
        assert_eq!(r.dest, addr("192.0.2.1:40000"));
        assert_eq!(r.reconnect, Some(addr("192.0.2.1:5061")));
        assert_eq!(sent_by_addr(&RawVia::scan("SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK1").unwrap()), Some("10.0.0.1:5061".parse().unwrap()));
    }

    #[test]
    fn unknown_transports_have_no_route() {
        assert_eq!(response_route(&RawVia::scan("SIP/2.0/SCTP 10.0.0.1;branch=z9hG4bK1").unwrap()), None);
    }
}
