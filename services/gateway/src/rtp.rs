//! One B-channel's RTP stream, sans-IO: 20 ms blocks of span samples become RTP packets and RTP
//! payloads become span samples, converted between A-law and µ-law when the span's law and the
//! negotiated codec differ. Each block is sent as it comes: nothing is held beyond one frame.

use std::fmt;
use std::time::Duration;

use holdfast_media::g711::{ALAW_TO_ULAW, PT_PCMA, PT_PCMU, ULAW_TO_ALAW};
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use crate::dahdi::Law;

/// Samples per 20 ms at 8 kHz: the RTP timestamp step.
pub const SAMPLES_PER_FRAME: u32 = 160;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("not an RTP packet: {0}")]
    Malformed(String),
    #[error("payload type {got} where {expected} was negotiated")]
    PayloadType { got: u8, expected: u8 },
    #[error("payload of {0} bytes is larger than one frame")]
    TooLong(usize),
}

/// Resolution and range of `SendDelays`: 50 µs steps up to five frames (100 ms); longer delays
/// count in the last step.
const DELAY_STEP_US: u64 = 50;
const DELAY_BUCKETS: usize = 2001;

/// How long B-channel blocks waited between their read and their RTP packet's send: the jitter
/// the gateway adds. A histogram, so a call of any length costs the same.
#[derive(Debug, Clone)]
pub struct SendDelays {
    buckets: [u32; DELAY_BUCKETS],
    count: u64,
    max: Duration,
}

impl Default for SendDelays {
    fn default() -> SendDelays {
        SendDelays { buckets: [0; DELAY_BUCKETS], count: 0, max: Duration::ZERO }
    }
}

impl SendDelays {
    pub fn record(&mut self, delay: Duration) {
        let bucket = (delay.as_micros() / u128::from(DELAY_STEP_US)).min(DELAY_BUCKETS as u128 - 1) as usize;
        if let Some(b) = self.buckets.get_mut(bucket) {
            *b = b.saturating_add(1);
        }
        self.count += 1;
        self.max = self.max.max(delay);
    }

    /// The upper edge of the bucket holding the `p`-th percentile (0-100), in µs.
    pub fn percentile_us(&self, p: u64) -> Option<u64> {
        let rank = (self.count * p).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return Some((i as u64 + 1) * DELAY_STEP_US);
            }
        }
        None
    }
}

impl fmt::Display for SendDelays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |q| self.percentile_us(q).map_or("-".to_owned(), |us| us.to_string());
        write!(f, "n={} p50_us={} p99_us={} max_us={}", self.count, p(50), p(99), self.max.as_micros())
    }
}

/// The RTP payload type of a span's law.
pub fn payload_type(law: Law) -> u8 {
    match law {
        Law::Mulaw => PT_PCMU,
        Law::Alaw => PT_PCMA,
    }
}

/// The law of a G.711 payload type.
pub fn law_of(payload_type: u8) -> Option<Law> {
    match payload_type {
        PT_PCMU => Some(Law::Mulaw),
        PT_PCMA => Some(Law::Alaw),
        _ => None,
    }
}

/// The negotiated G.711 payload type, and the tables converting span samples to its law and
/// back when the two differ.
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    payload_type: u8,
    convert: Option<(&'static [u8; 256], &'static [u8; 256])>,
}

impl Codec {
    /// `payload_type` must be G.711 (0 or 8): the SDP layer only negotiates those.
    pub fn new(payload_type: u8, span_law: Law) -> Codec {
        let convert = match (span_law, law_of(payload_type)) {
            (Law::Alaw, Some(Law::Mulaw)) => Some((&ALAW_TO_ULAW, &ULAW_TO_ALAW)),
            (Law::Mulaw, Some(Law::Alaw)) => Some((&ULAW_TO_ALAW, &ALAW_TO_ULAW)),
            _ => None,
        };
        Codec { payload_type, convert }
    }

    /// The B-channel samples an RTP packet carries.
    pub fn depacketize(&self, datagram: &[u8]) -> Result<Vec<u8>, RtpError> {
        let reader = RtpReader::new(datagram).map_err(|e| RtpError::Malformed(format!("{e:?}")))?;
        if reader.payload_type() != self.payload_type {
            return Err(RtpError::PayloadType { got: reader.payload_type(), expected: self.payload_type });
        }
        let payload = reader.payload();
        // More than one frame would have to be split and queued; G.711 peers send 20 ms.
        if payload.len() > SAMPLES_PER_FRAME as usize {
            return Err(RtpError::TooLong(payload.len()));
        }
        Ok(match self.convert {
            Some((_, to_span)) => payload.iter().map(|s| to_span[usize::from(*s)]).collect(),
            None => payload.to_vec(),
        })
    }
}

/// One B-channel's outgoing RTP: each block becomes a packet, with its own sequence number and
/// timestamp, in the codec's law.
#[derive(Debug)]
pub struct Packetizer {
    codec: Codec,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
}

impl Packetizer {
    pub fn new(codec: Codec, ssrc: u32) -> Packetizer {
        // Random initial sequence number and timestamp (RFC 3550 §5.1), derived from the SSRC.
        Packetizer { codec, ssrc, seq: (ssrc >> 16) as u16, timestamp: ssrc.rotate_left(7) }
    }

    /// One block of B-channel samples as an RTP packet.
    pub fn packetize(&mut self, samples: &[u8]) -> Vec<u8> {
        let payload: Vec<u8> = match self.codec.convert {
            Some((to_codec, _)) => samples.iter().map(|s| to_codec[usize::from(*s)]).collect(),
            None => samples.to_vec(),
        };
        let packet = RtpPacketBuilder::new()
            .payload_type(self.codec.payload_type)
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.seq))
            .timestamp(self.timestamp)
            .payload(&payload)
            .build()
            // Only an oversized payload fails, and a B-channel block is 160 bytes.
            .unwrap_or_default();
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples.len() as u32);
        packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_law_passes_bytes_unchanged_with_advancing_headers() {
        let codec = Codec::new(0, Law::Mulaw);
        let mut s = Packetizer::new(codec, 0x1234_5678);
        let block: Vec<u8> = (0..160u16).map(|i| i as u8).collect();
        let a = s.packetize(&block);
        let b = s.packetize(&block);
        let (ra, rb) = (RtpReader::new(&a).unwrap(), RtpReader::new(&b).unwrap());
        assert_eq!((ra.payload_type(), ra.ssrc(), ra.payload()), (0, 0x1234_5678, &block[..]));
        assert_eq!(u16::from(rb.sequence_number()), u16::from(ra.sequence_number()).wrapping_add(1));
        assert_eq!(rb.timestamp(), ra.timestamp().wrapping_add(160));
        assert_eq!(codec.depacketize(&a).unwrap(), block);
    }

    #[test]
    fn differing_laws_are_converted_by_the_g711_tables_both_ways() {
        let codec = Codec::new(8, Law::Mulaw);
        let ulaw = vec![0xFF, 0x80, 0x00, 0x7F];
        let packet = Packetizer::new(codec, 1).packetize(&ulaw);
        let sent = RtpReader::new(&packet).unwrap().payload().to_vec();
        assert_eq!(sent, ulaw.iter().map(|u| ULAW_TO_ALAW[usize::from(*u)]).collect::<Vec<_>>());
        let mut peer = Packetizer::new(Codec::new(8, Law::Alaw), 2);
        let back = codec.depacketize(&peer.packetize(&sent)).unwrap();
        assert_eq!(back, sent.iter().map(|a| ALAW_TO_ULAW[usize::from(*a)]).collect::<Vec<_>>());
    }

    #[test]
    fn send_delays_give_percentiles_in_50_us_steps() {
        let mut d = SendDelays::default();
        assert_eq!(d.percentile_us(50), None);
        for us in 1..=100 {
            d.record(Duration::from_micros(us * 10));
        }
        d.record(Duration::from_millis(400));
        assert_eq!((d.percentile_us(50), d.percentile_us(99), d.percentile_us(100)), (Some(550), Some(1050), Some(100_050)));
        assert_eq!(d.to_string(), "n=101 p50_us=550 p99_us=1050 max_us=400000");
    }

    #[test]
    fn foreign_payload_types_and_junk_are_refused() {
        let codec = Codec::new(0, Law::Mulaw);
        let mut other = Packetizer::new(Codec::new(8, Law::Alaw), 2);
        assert_eq!(codec.depacketize(&other.packetize(&[0; 160])), Err(RtpError::PayloadType { got: 8, expected: 0 }));
        assert!(matches!(codec.depacketize(&[0x80, 0]), Err(RtpError::Malformed(_))));
        let mut big = Packetizer::new(codec, 3);
        assert_eq!(codec.depacketize(&big.packetize(&[0; 400])), Err(RtpError::TooLong(400)));
    }
}
