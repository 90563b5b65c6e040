//! Where a proxy branch goes: the Request-URI it carries, the address and transport it is sent
//! to, and the Route set (a binding's Path) it follows.
use holdfast_sip::message::Uri;
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
