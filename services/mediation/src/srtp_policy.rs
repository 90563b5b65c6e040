//! Whether a leg of a call (the branch's phones, a trunk) takes SRTP: its `srtp` key.
use serde::Deserialize;

/// `srtp = "mandatory" | "optional" | "off"` for a leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// RTP/SAVP only: a plain offer from the leg is answered 488, our offers to it are SRTP.
    Mandatory,
    /// Either: an SRTP offer is answered with SRTP, a plain one plain; our offers are plain
    /// RTP/AVP (what every peer takes).
    #[default]
    Optional,
    /// Plain RTP only: an RTP/SAVP offer is answered 488.
    Off,
}
