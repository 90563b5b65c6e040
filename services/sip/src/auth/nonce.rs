//! Stateless nonces: issue time and a serial number, authenticated by a keyed hash, so issuing a
//! challenge needs no table and a forged or foreign nonce is recognised at once. The hash may
//! also cover the address the challenge went to: credentials with such a nonce show that their
//! sender received a packet there, which a source address alone never shows over UDP.
use crate::keyed::{KeyedHash, TAG_LEN};
/// Hex length: 8 bytes issue time, 8 bytes serial, 16 bytes tag.
pub(crate) const NONCE_LEN: usize = 2 * (8 + 8 + TAG_LEN);

/// What a valid nonce of ours carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonceId {
    pub issued: u64,
    pub serial: u64,
}

impl NonceId {
    /// A compact key for the nonce-count table.
    pub(crate) fn key(self) -> u128 {
        (u128::from(self.issued) << 64) | u128::from(self.serial)
    }
}

pub(crate) struct NonceMinter {
    /// Keyed for the realm, so a nonce of one realm is no nonce of another.
    keyed: KeyedHash,
}

impl NonceMinter {
    pub(crate) fn new(secret: [u8; 32], realm: &str) -> Self {
        NonceMinter {
            keyed: KeyedHash::new(&secret, realm),
        }
    }

    fn tag(&self, id: NonceId, peer: &[u8]) -> [u8; TAG_LEN] {
        self.keyed
            .tag(&[&id.issued.to_be_bytes(), &id.serial.to_be_bytes(), peer])
    }

    /// The nonce `id`, bound to `peer` (empty: to nobody in particular).
    pub(crate) fn mint(&self, id: NonceId, peer: &[u8]) -> String {
        let mut raw = [0u8; NONCE_LEN / 2];
        raw[..8].copy_from_slice(&id.issued.to_be_bytes());
        raw[8..16].copy_from_slice(&id.serial.to_be_bytes());
        raw[16..].copy_from_slice(&self.tag(id, peer));
        hex::encode(raw)
    }

    /// The nonce's identity if we issued it to `peer`, whatever its age.
    pub(crate) fn check(&self, nonce: &str, peer: &[u8]) -> Option<NonceId> {
        if nonce.len() != NONCE_LEN {
            return None;
        }
        let mut raw = [0u8; NONCE_LEN / 2];
        hex::decode_to_slice(nonce, &mut raw).ok()?;
        let (issued, rest) = raw.split_at(8);
        let (serial, tag) = rest.split_at(8);
        let id = NonceId {
            issued: u64::from_be_bytes(issued.try_into().ok()?),
            serial: u64::from_be_bytes(serial.try_into().ok()?),
        };
        self.keyed
            .verify(&[&id.issued.to_be_bytes(), &id.serial.to_be_bytes(), peer], tag)
            .then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_nonce_checks_and_tampering_is_detected() {
        let m = NonceMinter::new([7; 32], "example.org");
        let id = NonceId {
            issued: 1_700_000_000,
            serial: 42,
        };
        let nonce = m.mint(id, b"");
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(m.check(&nonce, b""), Some(id));

        // Move the timestamp forward: the tag no longer matches.
        let forged = format!("{:016x}{}", id.issued + 1000, &nonce[16..]);
        assert_eq!(m.check(&forged, b""), None);
        assert_eq!(m.check(&nonce[1..], b""), None);
        assert_eq!(m.check(&"z".repeat(NONCE_LEN), b""), None);
        assert_eq!(NonceMinter::new([8; 32], "example.org").check(&nonce, b""), None);
        assert_eq!(NonceMinter::new([7; 32], "other.org").check(&nonce, b""), None);
    }

    #[test]
    fn a_nonce_bound_to_one_address_is_no_nonce_from_another() {
        let m = NonceMinter::new([7; 32], "example.org");
        let id = NonceId { issued: 1_700_000_000, serial: 7 };
        let nonce = m.mint(id, &[127, 0, 0, 1]);
        assert_eq!(m.check(&nonce, &[127, 0, 0, 1]), Some(id));
        assert_eq!(m.check(&nonce, &[127, 0, 0, 2]), None);
        assert_eq!(m.check(&nonce, b""), None);
    }
}
