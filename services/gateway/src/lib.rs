//! Holdfast PSTN gateway: DAHDI spans, ISDN PRI signalling (Q.921/Q.931), TDM towards SIP/RTP.
// Unsafe code is the DAHDI binding's alone (its ioctls): denied everywhere else.
#![deny(unsafe_code)]

pub mod alarms;
pub mod config;
#[allow(unsafe_code)]
pub mod dahdi;
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
