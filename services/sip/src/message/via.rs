//! One Via value: `SIP/2.0/UDP host:port;branch=...;rport;received=...`.
use super::{Host, Params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-cased transport token: UDP, TCP, TLS, SCTP, WS, or an extension.
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }
}

impl Via {
    pub fn parse(_value: &str) -> Result<Self, super::HeaderError> {
        todo!("wire helper: parse Via")
    }
}
