//! Holdfast PSTN gateway: DAHDI spans, ISDN PRI signalling (Q.921/Q.931), TDM towards SIP/RTP.

pub mod alarms;
pub mod dahdi;
pub mod q921;
pub mod q931;
pub mod pri;
pub mod span;
pub mod trunk;
pub mod config;
