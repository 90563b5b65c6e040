//! SDES key exchange (RFC 4568): the a=crypto attribute of an RTP/SAVP stream,
//! `a=crypto:<tag> <suite> inline:<key||salt>[|<lifetime>][|<MKI>:<length>] [<session params>]`.
//!
//! What the relay can use becomes a `Crypto`: a suite it speaks, one key without MKI, no
//! session parameters (KDR, UNENCRYPTED_*, FEC_*, WSH change what SRTP does; webrtc-srtp does
//! none of them). A well-formed line it cannot use is kept as written, hidden from `Debug`, and
//! never chosen. A line of a known suite whose key is not exactly that suite's key and salt in
//! base64, or with a malformed tag or lifetime, makes the description an error: nobody is
//! answered with a key we half understood.
use super::SdpError;
use holdfast_media::srtp::{MasterKey, Suite};
use std::fmt;
use zeroize::Zeroizing;

/// Longest a=crypto value taken: three keys with lifetimes and MKIs fit in a third of it.
const MAX_LEN: usize = 512;
/// RFC 3711 §9.2: at most 2^48 packets under one master key.
const MAX_LIFETIME_LOG2: u32 = 48;

/// A usable a=crypto line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// 1 to 9 digits, chosen by the offerer; the answer names the one it accepted.
    pub tag: u32,
    pub key: MasterKey,
}

impl Crypto {
    pub fn suite(&self) -> Suite {
        self.key.suite()
    }
}

impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a=crypto:{} {} inline:{}", self.tag, self.key.suite(), self.key.to_base64().as_str())
    }
}

/// An a=crypto line the relay cannot use, as written (it may hold a key).
#[derive(Clone, PartialEq, Eq)]
pub struct UnusableCrypto(Zeroizing<String>);

impl UnusableCrypto {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UnusableCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnusableCrypto(<redacted>)")
    }
}

/// The value of an a=crypto attribute (after `a=crypto:`): the key when usable, the line kept
/// when well-formed but not for us.
pub(super) fn parse(value: &str) -> Result<Result<Crypto, UnusableCrypto>, SdpError> {
    let malformed = SdpError::Malformed("a=crypto");
    if value.len() > MAX_LEN {
        return Err(malformed);
    }
    let unusable = || Ok(Err(UnusableCrypto(Zeroizing::new(format!("a=crypto:{value}")))));
    let mut fields = value.split(' ');
    let (Some(tag), Some(suite), Some(key_params)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(malformed);
    };
    if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed);
    }
    let tag = tag.parse().map_err(|_| malformed.clone())?;
    let Some(suite) = Suite::from_name(suite) else { return unusable() };
    // Several keys (';'), each with its MKI: the relay keeps one key per direction.
    if key_params.contains(';') {
        return unusable();
    }
    let Some(inline) = key_params.strip_prefix("inline:") else { return Err(malformed) };
    let mut parts = inline.split('|');
    let key = MasterKey::from_base64(suite, parts.next().unwrap_or_default()).map_err(|_| malformed.clone())?;
    let mut mki = false;
    for (i, part) in parts.enumerate() {
        match part.split_once(':') {
            Some((value, length)) if digits(value, 39) && digits(length, 3) => mki = true,
            None if i == 0 && lifetime(part) => {}
            _ => return Err(malformed),
        }
    }
    // Session parameters, or an MKI: nothing the relay does.
    if mki || fields.next().is_some() {
        return unusable();
    }
    Ok(Ok(Crypto { tag, key }))
}

fn digits(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
}

/// `2^N` or a decimal count, not past what a master key may protect.
fn lifetime(s: &str) -> bool {
    match s.strip_prefix("2^") {
        Some(n) => digits(n, 2) && n.parse::<u32>().is_ok_and(|n| (1..=MAX_LIFETIME_LOG2).contains(&n)),
        None => digits(s, 15) && s.parse::<u64>().is_ok_and(|n| n > 0 && n <= 1 << MAX_LIFETIME_LOG2),
    }
}
