//! The SIP wire layer: bytes to `Message` and back, in front of rsip.
//!
//! rsip 0.4 alone fails real-world SIP (measured on the RFC 4475 torture corpus: no header
//! folding, no compact forms, no extension methods, first value only of comma-joined headers,
//! Content-Length ignored, no IPv6 hosts or tel: URIs), so parsing and serialization are ours:
//! `parse` for a datagram, `StreamDecoder` for TCP framing and RFC 5626 keepalives, `to_bytes`
//! on the message types, and `error_response` for the 400/505 a faulty request earns.
mod datagram;
mod error;
mod head;
mod salvage;
mod serialize;
mod stream;
mod validate;

pub use datagram::parse;
pub use error::WireError;
pub use salvage::error_response;
pub use serialize::Unwritable;
pub use stream::{StreamDecoder, StreamItem};
