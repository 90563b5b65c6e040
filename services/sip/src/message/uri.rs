//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), IPv6 references included.
use super::Params;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Domain(String),
    V4(Ipv4Addr),
    /// Written as `[addr]` on the wire.
    V6(Ipv6Addr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// The user part with escapes decoded (`;` is legal in it, RFC 4475 semiuri).
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// `?name=value&...` URI headers, undecoded.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    pub number: String,
    pub params: Params,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    /// Any other absolute URI (RFC 3261 allows them in Request-URI and To/From), kept verbatim.
    Other(String),
}

impl Uri {
    pub fn parse(_value: &str) -> Result<Self, super::HeaderError> {
        todo!("wire helper: parse Uri")
    }
}
