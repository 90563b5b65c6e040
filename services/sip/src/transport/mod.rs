//! The tokio edge: UDP and TCP on one address.
use std::fmt;

/// The transport a message travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl Protocol {
    /// Reliable transports need no retransmissions and no waiting for stray copies (§17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Protocol::Tcp)
    }

    /// The token in a Via header.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
