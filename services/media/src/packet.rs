//! Telling RTP from RTCP in one datagram, and rewriting RTP between legs
//! that negotiated different payload types.
//!
//! rtp-rs parses and builds RTP only; it has no RTCP. RTCP is recognised by
//! the RFC 5761 §4 rule (second octet, marker bit masked, in 64..=95) and is
//! relayed as opaque bytes.

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError};

use crate::g711;

/// What a datagram on a media port holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// RTP with this payload type.
    Rtp { payload_type: u8 },
    /// RTCP (on its own port or multiplexed with RTP).
    Rtcp,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("not RTP or RTCP: {0}")]
    Malformed(String),
    #[error("rewritten packet does not fit the output buffer")]
    TooLarge,
}

impl From<RtpReaderError> for PacketError {
    fn from(e: RtpReaderError) -> Self {
        PacketError::Malformed(format!("{e:?}"))
    }
}

/// Classifies a datagram, validating RTP headers with rtp-rs.
pub fn classify(datagram: &[u8]) -> Result<PacketKind, PacketError> {
    match datagram {
        [first, second, ..] if first >> 6 == 2 && (64..=95).contains(&(second & 0x7F)) => {
            if datagram.len() < 8 {
                return Err(PacketError::Malformed("RTCP shorter than its header".into()));
            }
            Ok(PacketKind::Rtcp)
        }
        _ => {
            let reader = RtpReader::new(datagram)?;
            Ok(PacketKind::Rtp {
                payload_type: reader.payload_type(),
            })
        }
    }
}

/// How an RTP packet changes on its way to the other leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Forward the bytes as they came.
    Unchanged,
    /// Convert a G.711 µ-law payload to A-law and set this payload type.
    UlawToAlaw { payload_type: u8 },
    /// Convert a G.711 A-law payload to µ-law and set this payload type.
    AlawToUlaw { payload_type: u8 },
    /// Keep the payload (e.g. RFC 4733 events), set this payload type.
    PayloadType(u8),
}

/// Applies `rewrite` to `packet`, writing the result into `out`. `scratch`
/// holds the converted payload (at least as long as the packet).
/// Returns the length written.
///
/// rtp-rs rebuilds the header from the reader (sequence, timestamp, SSRC,
/// marker, CSRCs and extension are kept). Its builder drops RTP padding;
/// G.711 payloads keep their length, so padding is never needed after it.
pub fn rewrite_into(
    rewrite: Rewrite,
    packet: &[u8],
    scratch: &mut [u8],
    out: &mut [u8],
) -> Result<usize, PacketError> {
    let reader = RtpReader::new(packet)?;
    let payload = reader.payload();
    let (payload_type, payload): (u8, &[u8]) = match rewrite {
        Rewrite::Unchanged => {
            let dst = out.get_mut(..packet.len()).ok_or(PacketError::TooLarge)?;
            dst.copy_from_slice(packet);
            return Ok(packet.len());
        }
        Rewrite::PayloadType(pt) => (pt, payload),
        Rewrite::UlawToAlaw { payload_type } | Rewrite::AlawToUlaw { payload_type } => {
            let converted = scratch
                .get_mut(..payload.len())
                .ok_or(PacketError::TooLarge)?;
            if matches!(rewrite, Rewrite::UlawToAlaw { .. }) {
                g711::ulaw_to_alaw_into(payload, converted);
            } else {
                g711::alaw_to_ulaw_into(payload, converted);
            }
            (payload_type, converted)
        }
    };
    let builder: RtpPacketBuilder<'_> = reader
        .create_builder()
        .payload_type(payload_type)
        .payload(payload);
    builder.build_into(out).map_err(|e| match e {
        rtp_rs::RtpPacketBuildError::BufferTooSmall => PacketError::TooLarge,
        other => PacketError::Malformed(format!("{other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtp_rs::Seq;

    fn rtp(pt: u8, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(pt)
            .sequence(Seq::from(7))
            .timestamp(160)
            .ssrc(0xDEAD_BEEF)
            .marked(true)
            .payload(payload)
            .build()
            .unwrap()
    }

    #[test]
    fn classifies_rtp_and_muxed_rtcp() {
        assert_eq!(classify(&rtp(0, &[1; 160])), Ok(PacketKind::Rtp { payload_type: 0 }));
        assert_eq!(classify(&rtp(101, &[1, 2, 3, 4])), Ok(PacketKind::Rtp { payload_type: 101 }));
        // Receiver report: V=2, PT=201 (marker bit set, 73 once masked).
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(classify(&rr), Ok(PacketKind::Rtcp));
        let sr = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(classify(&sr), Ok(PacketKind::Rtcp));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [&[][..], &[0x80], &[0x40; 20], &[0x80, 0, 0], &[0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]] {
            assert!(classify(bad).is_err(), "{bad:?}");
        }
        let mut out = [0u8; 64];
        let mut scratch = [0u8; 64];
        assert!(rewrite_into(Rewrite::PayloadType(8), &[0x80, 0, 1], &mut scratch, &mut out).is_err());
    }

    #[test]
    fn transcodes_payload_and_keeps_header() {
        let payload: Vec<u8> = (0..160).map(|i| (i * 3) as u8).collect();
        let input = rtp(0, &payload);
        let mut out = [0u8; 1500];
        let mut scratch = [0u8; 1500];
        let n = rewrite_into(Rewrite::UlawToAlaw { payload_type: 8 }, &input, &mut scratch, &mut out).unwrap();
        let r = RtpReader::new(&out[..n]).unwrap();
        assert_eq!(r.payload_type(), 8);
        assert_eq!(u16::from(r.sequence_number()), 7);
        assert_eq!(r.timestamp(), 160);
        assert_eq!(r.ssrc(), 0xDEAD_BEEF);
        assert!(r.mark());
        let want: Vec<u8> = payload.iter().map(|&b| g711::ULAW_TO_ALAW[usize::from(b)]).collect();
        assert_eq!(r.payload(), &want[..]);
    }

    #[test]
    fn payload_type_rewrite_keeps_payload() {
        let event = [5, 0x8A, 0x03, 0x20];
        let input = rtp(101, &event);
        let mut out = [0u8; 64];
        let mut scratch = [0u8; 64];
        let n = rewrite_into(Rewrite::PayloadType(96), &input, &mut scratch, &mut out).unwrap();
        let r = RtpReader::new(&out[..n]).unwrap();
        assert_eq!(r.payload_type(), 96);
        assert_eq!(r.payload(), &event);
    }
}
