//! Holdfast's SIP core.
//!
//! `message` is the model, `wire` turns bytes into messages and back (it stands in front of rsip,
//! which alone fails the RFC 4475 torture corpus), `transaction` holds the RFC 3261 §17 state
//! machines (sans-IO), `transport` the tokio UDP/TCP edge, `auth` RFC 7616 digest, `keyed` the
//! keyed tags behind every token the services hand out, `ids` the branches, tags and Call-IDs an
//! element makes up, from an RNG its owner injects, `driver` the one event loop that runs a
//! service's sans-IO core over the transport, its timers and its other inputs, `bounded` how a
//! table a row per source address stays within its bound.
#![forbid(unsafe_code)]
pub mod auth;
pub mod bounded;
pub mod driver;
pub mod ids;
pub mod keyed;
pub mod message;
pub mod transaction;
pub mod transport;
pub mod wire;

pub use ids::Ids;
