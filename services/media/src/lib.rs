//! Holdfast media relay: G.711 tables and transcoding, the RTP/RTCP port
//! pool, and a single-threaded forwarding engine driven by the B2BUA.

pub mod g711;
