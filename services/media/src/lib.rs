//! Holdfast media relay: G.711 tables and transcoding, the RTP/RTCP port
//! pool, and a single-threaded forwarding engine driven by the B2BUA.
//!
//! The B2BUA allocates a [`Relay`] session per call, writes the two legs'
//! local ports into the SDP it sends, and reports each side's SDP with
//! [`Relay::set_remote`]. Packets flow as soon as a leg has an address.
#![forbid(unsafe_code)]

pub mod g711;
pub mod loss;
pub mod packet;
pub mod port_pool;
pub mod relay;
pub mod session;
pub mod srtp;

pub use relay::{Allocation, LegPorts, Relay, RelayConfig, RelayError, SessionId};
pub use session::{Channel, LegStats, RemoteMedia, SessionStats, Side};
