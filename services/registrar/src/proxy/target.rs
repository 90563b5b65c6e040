//! Where a proxy branch goes: the Request-URI it carries, the address and transport it is sent
//! to, and the Route set (a binding's Path) it follows.
use holdfast_sip::message::Uri;
use holdfast_sip::transport::Protocol;
use std::net::SocketAddr;

/// Where one side of a hop reaches us: our address and port, over which transport, and the
/// phone's own connection on that side, when it is one (its flow, RFC 5626): the Record-Route
/// naming this side then carries it as a flow token, so that requests of the dialog towards
/// the phone go back over that connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub addr: SocketAddr,
    pub transport: Protocol,
    pub flow: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub uri: Uri,
    pub dest: SocketAddr,
    pub transport: Protocol,
    pub route: Vec<String>,
    /// Our address facing `dest`, with our port for `transport` (our Via and Record-Route
    /// name it).
    pub local: SocketAddr,
    /// The caller's PSTN number, asserted to sba-mediation (P-Asserted-Identity, RFC 3325):
    /// only towards the PSTN, and only a number the directory gives the caller.
    pub asserted: Option<String>,
    /// The phone's own connection this target is reached over (RFC 5626 §5.3), if it is one.
    pub flow: Option<SocketAddr>,
}

impl Target {
    /// Our side of the hop towards the target.
    pub fn side(&self) -> Side {
        Side { addr: self.local, transport: self.transport, flow: self.flow }
    }
}

/// Where a branch to a registered contact goes (address, transport). `flow` is where and how
/// the binding was registered; `contact` the Contact's own address, when it names an IP, and its
/// transport (its `transport` parameter, else UDP); `flow_open` whether a connection of a
/// connection-oriented flow (TCP, TLS) is still open.
///
/// The flow first: the phone may sit behind NAT, so its source address, not its Contact, is
/// where it is reached (RFC 3581; RFC 5626 §5.3 forwards over the registering flow). A flow over
/// a connection that is gone (our restart, a dropped link) leads to the phone's ephemeral source
/// port, where nothing listens: the request goes to the Contact instead, on a new connection
/// (RFC 3261 §18.1.1), as it does for a phone that asked for outbound (RFC 5626) until it has
/// registered a new flow. A Contact without an IP leaves only the flow to try.
pub fn binding_hop(
    flow: (SocketAddr, Protocol),
    contact: Option<(SocketAddr, Protocol)>,
    flow_open: bool,
) -> (SocketAddr, Protocol) {
    let (_, transport) = flow;
    if !transport.is_reliable() || flow_open {
        return flow;
    }
    contact.unwrap_or(flow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_connection_leads_to_the_contact_a_datagram_flow_never_does() {
        let flow: SocketAddr = "192.0.2.5:40312".parse().unwrap();
        let contact: SocketAddr = "192.0.2.5:5060".parse().unwrap();
        let tcp = (flow, Protocol::Tcp);
        assert_eq!(binding_hop(tcp, Some((contact, Protocol::Tcp)), true), tcp, "an open flow is used");
        assert_eq!(binding_hop(tcp, Some((contact, Protocol::Tcp)), false), (contact, Protocol::Tcp));
        // A Contact without transport=tcp says UDP (RFC 3263), and is believed.
        assert_eq!(binding_hop(tcp, Some((contact, Protocol::Udp)), false), (contact, Protocol::Udp));
        assert_eq!(binding_hop(tcp, None, false), tcp, "a Contact without an IP: only the flow is left");
        // Behind NAT a UDP phone's Contact is unreachable; its flow is the way in, open or not.
        let udp = (flow, Protocol::Udp);
        assert_eq!(binding_hop(udp, Some((contact, Protocol::Udp)), false), udp);
    }
}
