//! SRTP and SRTCP (RFC 3711) on one leg of the relay, sans-IO: what the far end sends is
//! authenticated, checked against replay and decrypted; what the relay sends it is encrypted.
//! The other leg sees plain RTP unless it has keys of its own (sba-gateway's side never does).
//!
//! The ciphers are webrtc-srtp's (webrtc-rs): pure Rust over the RustCrypto AES, HMAC-SHA1 and
//! GCM (no OpenSSL or C libsrtp to build into the image, no unsafe of ours), maintained, and it
//! covers the SDES suites the appliance speaks: AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568),
//! AES_256_CM_HMAC_SHA1_80 and _32 (RFC 6188) and AEAD_AES_128_GCM and AEAD_AES_256_GCM
//! (RFC 7714). Two of its behaviours are guarded here:
//! - it makes per-SSRC state before a packet has authenticated, so made-up SSRCs would grow it:
//!   each SSRC gets a context of its own, kept only once a packet of it authenticated, at most
//!   `MAX_SSRCS` a direction (the oldest goes);
//! - it hands back an SRTCP packet whose E flag is clear without checking its tag, and reads
//!   the index from the tail without a length check: SRTCP shorter than header, index and tag,
//!   or with E clear, is refused before it gets there (the appliance never offers
//!   UNENCRYPTED_SRTCP).
//!
//! Keys are `MasterKey`s: zeroed when dropped, never printed by `Debug`.

use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;
use zeroize::Zeroizing;

use crate::packet::PacketKind;

/// Contexts (SSRCs) kept per direction of a leg: a far end changes SSRC on a re-INVITE or a
/// transfer; more than this at once is nobody's real call.
const MAX_SSRCS: usize = 4;
/// Packets behind the newest one still taken (RFC 3711 §3.3.2: at least 64).
const REPLAY_WINDOW: usize = 128;
/// The SRTCP index with its E flag (RFC 3711 §3.4).
const SRTCP_INDEX_LEN: usize = 4;
/// An RTCP header with its sender SSRC.
const RTCP_HEADER_LEN: usize = 8;

/// The SDES crypto suites the appliance speaks, most preferred first in `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
    AesCm256HmacSha1_80,
    AesCm256HmacSha1_32,
    AeadAes256Gcm,
}

impl Suite {
    /// The 128-bit suites first: every SDES peer has them (RFC 4568's mandatory one leads).
    pub const ALL: [Suite; 6] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AeadAes256Gcm,
    ];

    /// The name in an SDP a=crypto line.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            Suite::AesCm256HmacSha1_80 => ProtectionProfile::Aes256CmHmacSha1_80,
            Suite::AesCm256HmacSha1_32 => ProtectionProfile::Aes256CmHmacSha1_32,
            Suite::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        }
    }

    /// Master key then master salt, in octets.
    pub fn material_len(self) -> usize {
        let p = self.profile();
        p.key_len() + p.salt_len()
    }

    /// The octets an SRTCP packet carries after its payload: E flag and index, and the tag.
    fn srtcp_trailer_len(self) -> usize {
        let p = self.profile();
        SRTCP_INDEX_LEN + p.rtcp_auth_tag_len() + p.aead_auth_tag_len()
    }

    /// Where the E flag and index sit, counted from the end: before the HMAC tag, or last
    /// after GCM's (its tag is inside the ciphertext).
    fn srtcp_index_from_end(self) -> usize {
        SRTCP_INDEX_LEN + self.profile().rtcp_auth_tag_len()
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{suite} needs {expected} octets of key and salt, got {got}")]
    Length { suite: Suite, expected: usize, got: usize },
    #[error("key is not base64")]
    NotBase64,
}

/// An SRTP master key and salt (RFC 3711 §8) for one suite, zeroed when dropped.
#[derive(Clone)]
pub struct MasterKey {
    suite: Suite,
    material: Zeroizing<Vec<u8>>,
}

/// RFC 4568 §6.1: base64 of RFC 3548 (padding written; taken with or without, as phones
/// differ), no whitespace, no trailing bits.
const INLINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl MasterKey {
    /// `material` is the key then the salt, exactly as long as the suite needs.
    pub fn new(suite: Suite, material: &[u8]) -> Result<MasterKey, KeyError> {
        let expected = suite.material_len();
        if material.len() != expected {
            return Err(KeyError::Length { suite, expected, got: material.len() });
        }
        Ok(MasterKey { suite, material: Zeroizing::new(material.to_vec()) })
    }

    /// A fresh key from the operating system's generator (through rand's thread generator).
    pub fn random(suite: Suite) -> MasterKey {
        use rand::RngCore as _;
        let mut rng = rand::rng();
        MasterKey::generate(suite, || rng.next_u64())
    }

    /// A fresh key from `next`, a cryptographically secure generator (the caller's, so a
    /// sans-IO core takes its randomness as an input).
    pub fn generate(suite: Suite, mut next: impl FnMut() -> u64) -> MasterKey {
        let mut material = Zeroizing::new(vec![0u8; suite.material_len()]);
        for chunk in material.chunks_mut(8) {
            let word = Zeroizing::new(next().to_le_bytes());
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        MasterKey { suite, material }
    }

    /// The key of an SDES `inline:` parameter (key and salt in base64).
    pub fn from_base64(suite: Suite, text: &str) -> Result<MasterKey, KeyError> {
        // Longer text cannot be a key: refused before decoding anything.
        if text.len() > suite.material_len().div_ceil(3) * 4 {
            return Err(KeyError::NotBase64);
        }
        let material = Zeroizing::new(INLINE.decode(text).map_err(|_| KeyError::NotBase64)?);
        MasterKey::new(suite, &material)
    }

    /// Key and salt in base64, for an SDES `inline:` parameter.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(INLINE.encode(&*self.material))
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    fn context(&self, replay_protected: bool) -> Option<Context> {
        let key_len = self.suite.profile().key_len();
        let (key, salt) = self.material.split_at(key_len);
        let (rtp, rtcp) = if replay_protected {
            (Some(srtp_replay_protection(REPLAY_WINDOW)), Some(srtcp_replay_protection(REPLAY_WINDOW)))
        } else {
            (None, None)
        };
        Context::new(key, salt, self.suite.profile(), rtp, rtcp).ok()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, <redacted>)", self.suite)
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &MasterKey) -> bool {
        use subtle::ConstantTimeEq as _;
        self.suite == other.suite && bool::from(self.material.as_slice().ct_eq(other.material.as_slice()))
    }
}

impl Eq for MasterKey {}

/// The keys of one leg: what its far end encrypts with (the key in its a=crypto) and what the
/// relay encrypts with towards it (the key in ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegKeys {
    pub inbound: MasterKey,
    pub outbound: MasterKey,
}

/// Why a protected packet was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its authentication tag did not verify: forged, or under another key.
    Auth,
    /// Its index was seen already, or is behind the replay window.
    Replay,
    /// Too short for the suite, or SRTCP left unencrypted.
    Malformed,
}

/// One direction's contexts, one per SSRC, oldest first.
struct Direction {
    key: MasterKey,
    replay_protected: bool,
    contexts: Vec<(u32, Context)>,
}

impl Direction {
    fn new(key: MasterKey, replay_protected: bool) -> Direction {
        Direction { key, replay_protected, contexts: Vec::new() }
    }

    /// Runs `op` in `ssrc`'s context; a new SSRC's context is kept only when `op` succeeds.
    fn with<T>(
        &mut self,
        ssrc: u32,
        op: impl FnOnce(&mut Context) -> Result<T, webrtc_srtp::Error>,
    ) -> Result<T, Refusal> {
        if let Some((_, context)) = self.contexts.iter_mut().find(|(s, _)| *s == ssrc) {
            return op(context).map_err(refusal);
        }
        let mut context = self.key.context(self.replay_protected).ok_or(Refusal::Malformed)?;
        let done = op(&mut context).map_err(refusal)?;
        if self.contexts.len() == MAX_SSRCS {
            self.contexts.remove(0);
        }
        self.contexts.push((ssrc, context));
        Ok(done)
    }
}

fn refusal(e: webrtc_srtp::Error) -> Refusal {
    use webrtc_srtp::Error as E;
    match e {
        E::SrtpSsrcDuplicated(..) | E::SrtcpSsrcDuplicated(..) | E::ErrDuplicated => Refusal::Replay,
        E::RtpFailedToVerifyAuthTag | E::RtcpFailedToVerifyAuthTag | E::ErrFailedToVerifyAuthTag => Refusal::Auth,
        // GCM reports a tag that does not verify as the AEAD crate's opaque error.
        E::AesGcm(_) => Refusal::Auth,
        _ => Refusal::Malformed,
    }
}

/// SRTP state of one leg.
pub struct LegCrypto {
    suite_in: Suite,
    inbound: Direction,
    outbound: Direction,
}

impl fmt::Debug for LegCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegCrypto({} in, {} out)", self.suite_in, self.outbound.key.suite)
    }
}

impl LegCrypto {
    pub fn new(keys: LegKeys) -> LegCrypto {
        LegCrypto {
            suite_in: keys.inbound.suite,
            inbound: Direction::new(keys.inbound, true),
            outbound: Direction::new(keys.outbound, false),
        }
    }

    /// The leg re-keyed (RFC 4568 §7.1.4: a mid-call offer or answer with a new key): a
    /// direction whose key is unchanged keeps its contexts (rollover counters, replay
    /// windows), a direction with a new key starts afresh.
    pub fn rekeyed(self, keys: LegKeys) -> LegCrypto {
        let keep = |d: Direction, key: MasterKey, replay_protected| if d.key == key { d } else { Direction::new(key, replay_protected) };
        LegCrypto {
            suite_in: keys.inbound.suite,
            inbound: keep(self.inbound, keys.inbound, true),
            outbound: keep(self.outbound, keys.outbound, false),
        }
    }

    /// A packet the far end sent, authenticated and decrypted.
    pub fn unprotect(&mut self, kind: PacketKind, packet: &[u8]) -> Result<Bytes, Refusal> {
        match kind {
            PacketKind::Rtp { .. } => {
                let ssrc = rtp_ssrc(packet).ok_or(Refusal::Malformed)?;
                self.inbound.with(ssrc, |c| c.decrypt_rtp(packet))
            }
            PacketKind::Rtcp => {
                let suite = self.suite_in;
                if packet.len() < RTCP_HEADER_LEN + suite.srtcp_trailer_len() {
                    return Err(Refusal::Malformed);
                }
                if packet[packet.len() - suite.srtcp_index_from_end()] & 0x80 == 0 {
                    return Err(Refusal::Malformed);
                }
                let ssrc = rtcp_ssrc(packet).ok_or(Refusal::Malformed)?;
                self.inbound.with(ssrc, |c| c.decrypt_rtcp(packet))
            }
        }
    }

    /// A plain packet for the far end, encrypted.
    pub fn protect(&mut self, kind: PacketKind, packet: &[u8]) -> Result<Bytes, Refusal> {
        match kind {
            PacketKind::Rtp { .. } => {
                let ssrc = rtp_ssrc(packet).ok_or(Refusal::Malformed)?;
                self.outbound.with(ssrc, |c| c.encrypt_rtp(packet))
            }
            PacketKind::Rtcp => {
                let ssrc = rtcp_ssrc(packet).ok_or(Refusal::Malformed)?;
                self.outbound.with(ssrc, |c| c.encrypt_rtcp(packet))
            }
        }
    }
}

fn rtp_ssrc(packet: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(packet.get(8..12)?.try_into().ok()?))
}

fn rtcp_ssrc(packet: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(packet.get(4..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests;
