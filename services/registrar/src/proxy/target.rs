//! Where a proxy branch goes: the Request-URI it carries, the address and transport it is sent
//! to, and the Route set (a binding's Path) it follows.
use holdfast_sip::message::{Host, Uri};
use holdfast_sip::transport::Protocol;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub uri: Uri,
    pub dest: SocketAddr,
    pub transport: Protocol,
    pub route: Vec<String>,
    /// Our address facing `dest` (our Via and Record-Route name it).
    pub local: IpAddr,
}

impl Target {
    /// A target reached at the host and port its own URI names (an IP; names are not resolved
    /// here: the branch must keep working without DNS when the WAN is down).
    pub fn from_uri(uri: Uri, local: IpAddr) -> Option<Target> {
        let Uri::Sip(sip) = &uri else { return None };
        let ip = match &sip.host {
            Host::V4(a) => (*a).into(),
            Host::V6(a) => (*a).into(),
            Host::Domain(_) => return None,
        };
        let transport = match sip.params.value("transport") {
            Some(t) if t.eq_ignore_ascii_case("tcp") => Protocol::Tcp,
            _ => Protocol::Udp,
        };
        let dest = SocketAddr::new(ip, sip.port.unwrap_or(5060));
        Some(Target { uri, dest, transport, route: Vec::new(), local })
    }
}
