//! The tokio edge: UDP and TCP on one address, and TLS on another, IPv4 or IPv6. Received
//! requests are stamped (RFC 3261 §18.2.1, RFC 3581) and handed over with their source;
//! responses are routed by their Via (§18.2.2); requests go to a given address, over a
//! connection opened on demand or one the peer opened (a phone's flow, RFC 5626/5923).
mod connections;
mod handle;
mod route;
mod shared;
mod stamp;
mod stream;
mod tcp;
mod tls;
mod udp;

pub use handle::{Transport, TransportHandle};
pub use route::{Destination, ResponseRoute};
pub use stamp::stamp_via;
pub use tls::{server_name_text, TlsCaller, TlsPeer, TlsSetup};
pub use tokio_rustls::rustls;

use crate::message::{HeaderError, Message};
use crate::wire::Unwritable;
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// The transport a message travels over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
    /// TLS over TCP (`SIP/2.0/TLS`, `transport=tls`, `sips:`).
    Tls,
}

impl Protocol {
    /// Reliable transports need no retransmissions and no waiting for stray copies (§17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Tls)
    }

    /// The token in a Via header.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
        }
    }

    /// The lower-case name in a `transport=` URI parameter and in the store.
    pub fn param(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        }
    }

    /// The transport a `transport=` parameter (or a stored name) names, any case.
    pub fn from_param(name: &str) -> Option<Protocol> {
        [Protocol::Udp, Protocol::Tcp, Protocol::Tls].into_iter().find(|p| name.eq_ignore_ascii_case(p.param()))
    }

    /// RFC 3263: 5061 for TLS, 5060 for the others.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Tls => 5061,
            Protocol::Udp | Protocol::Tcp => 5060,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds on stream connections (TCP and TLS), so that no host can hold every file descriptor
/// or keep connections it never uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once, in and out.
    pub max_connections: usize,
    /// Accepted connections from one IP address (a phone needs one; a NAT a few hundred).
    pub max_per_ip: usize,
    /// A connection on which nothing arrives for this long is closed (RFC 5626 keepalives and
    /// registration refreshes keep a phone's flow open).
    pub idle_timeout: std::time::Duration,
}

impl Default for TcpLimits {
    fn default() -> TcpLimits {
        TcpLimits { max_connections: 4096, max_per_ip: 256, idle_timeout: std::time::Duration::from_secs(600) }
    }
}

/// What the TCP limits have done since the transport started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    pub open: usize,
    /// Connections closed at accept for being over a limit.
    pub refused: u64,
    /// Connections closed for idling.
    pub idle_closed: u64,
}

/// Names one TCP connection for as long as the transport lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// A connection named by hand, for sans-IO cores' tests that simulate connections.
    pub fn from_raw(n: u64) -> ConnId {
        ConnId(n)
    }
}

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub addr: SocketAddr,
    pub transport: Protocol,
    /// The TCP or TLS connection it arrived on (its flow, RFC 5626).
    pub conn: Option<ConnId>,
}

/// A received message; a request's top Via is already stamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub msg: Message,
    pub source: Source,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error(transparent)]
    Unwritable(#[from] Unwritable),
    #[error("transport {0} is not served")]
    Unsupported(String),
    #[error("cannot resolve {0}")]
    Unresolvable(String),
}
