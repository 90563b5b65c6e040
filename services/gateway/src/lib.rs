//! Holdfast PSTN gateway: DAHDI spans, ISDN PRI signalling (Q.921/Q.931), TDM towards SIP/RTP.
#![forbid(unsafe_code)]

pub mod alarms;
pub mod config;
/// The DAHDI binding (holdfast-dahdi, the crate with the ioctls' unsafe code).
pub use holdfast_dahdi as dahdi;
pub mod edge;
pub mod exchange;
pub mod pri;
pub mod q921;
pub mod q931;
pub mod rtp;
pub mod sip;
pub mod span;
pub mod status;
pub mod trunk;
