//! Holdfast's telephony vocabulary: what sba-mediation and sba-gateway both say about a call,
//! written once. `sdp` is the session description model and the RFC 3264 offer/answer rules,
//! `cause` the Q.850 causes by name and the RFC 3398 table between them and SIP statuses,
//! `reason` the Reason header (RFC 3326) that carries a cause across SIP, `dialog` a dialog with
//! its route set, `ack_wait` a UAS's 2xx sent again until its ACK, `privacy` a withheld caller.
#![forbid(unsafe_code)]

pub mod ack_wait;
pub mod cause;
pub mod dialog;
pub mod privacy;
pub mod reason;
pub mod sdp;
