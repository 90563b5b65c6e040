//! The gateway's SIP side, sans-IO: each PRI call is one SIP dialog with sba-mediation. PSTN
//! calls become INVITEs to mediation (we are the UAC), INVITEs from mediation become SETUPs (we
//! are the UAS); the SDP offer/answer picks G.711 and the Q.850 cause crosses in both
//! directions, as a SIP status and a Reason header.

mod calls;
mod requests;
mod trust;

pub use calls::{Action, Calls, LegId, SipConfig};
pub use holdfast_sip::driver::Outbound;
pub(crate) use calls::party;

/// Methods the gateway serves.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS";

#[cfg(test)]
mod tests;
