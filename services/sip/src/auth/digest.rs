//! The RFC 7616 §3.4 computations: HA1, HA2 and the response, on stack buffers so the verify
//! path allocates nothing for hashing.
use md5::Md5;
use sha2::{Digest, Sha256};

/// The hash function of a digest exchange; the `-sess` variants are carried separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The token used in the `algorithm` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm` token; the flag says whether it is a `-sess` variant.
    pub fn parse(token: &str) -> Option<(Algorithm, bool)> {
        const TABLE: [(&str, Algorithm, bool); 4] = [
            ("MD5", Algorithm::Md5, false),
            ("MD5-sess", Algorithm::Md5, true),
            ("SHA-256", Algorithm::Sha256, false),
            ("SHA-256-sess", Algorithm::Sha256, true),
        ];
        TABLE
            .iter()
            .find(|(name, _, _)| name.eq_ignore_ascii_case(token))
            .map(|&(_, alg, sess)| (alg, sess))
    }

    /// Length of a hex digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }
}

/// A lowercase hex digest held on the stack.
#[derive(Clone, Copy)]
pub(crate) struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ever filled by hex::encode_to_slice, which writes ASCII.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// H(part0:part1:...) in lowercase hex.
pub(crate) fn hash_joined(alg: Algorithm, parts: &[&[u8]]) -> HexDigest {
    match alg {
        Algorithm::Md5 => joined_hex::<Md5>(parts),
        Algorithm::Sha256 => joined_hex::<Sha256>(parts),
    }
}

fn joined_hex<D: Digest>(parts: &[&[u8]]) -> HexDigest {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    hex_of(&hasher.finalize())
}

fn hex_of(raw: &[u8]) -> HexDigest {
    let mut out = HexDigest {
        buf: [0; 64],
        len: raw.len() * 2,
    };
    // raw is at most 32 bytes (SHA-256), so the buffer always fits.
    let _ = hex::encode_to_slice(raw, &mut out.buf[..out.len]);
    out
}

/// HA1 = H(username:realm:password), what a registrar stores instead of the password.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    hash_joined(
        alg,
        &[username.as_bytes(), realm.as_bytes(), password.as_bytes()],
    )
    .as_str()
    .to_owned()
}

/// The quality of protection; only `auth` is supported (`auth-int` needs the body hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
}

impl Qop {
    pub fn token(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
        }
    }
}

/// The inputs of a response computation besides HA1.
pub(crate) struct ResponseInput<'a> {
    pub algorithm: Algorithm,
    pub sess: bool,
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    pub cnonce: Option<&'a str>,
    pub nc: Option<u32>,
    pub qop: Option<Qop>,
}

/// The `response` value for the stored (lowercase hex) HA1.
pub(crate) fn response(ha1_hex: &str, input: &ResponseInput<'_>) -> HexDigest {
    let alg = input.algorithm;
    let cnonce = input.cnonce.unwrap_or_default().as_bytes();
    let session_ha1;
    let ha1_bytes = if input.sess {
        session_ha1 = hash_joined(alg, &[ha1_hex.as_bytes(), input.nonce.as_bytes(), cnonce]);
        session_ha1.as_bytes()
    } else {
        ha1_hex.as_bytes()
    };
    let ha2 = hash_joined(alg, &[input.method.as_bytes(), input.uri.as_bytes()]);
    match (input.qop, input.nc) {
        (Some(qop), Some(nc)) => {
            let mut nc_hex = [0u8; 8];
            let _ = hex::encode_to_slice(nc.to_be_bytes(), &mut nc_hex);
            hash_joined(
                alg,
                &[
                    ha1_bytes,
                    input.nonce.as_bytes(),
                    &nc_hex,
                    cnonce,
                    qop.token().as_bytes(),
                    ha2.as_bytes(),
                ],
            )
        }
        // RFC 2069 compatibility, only ever produced by the client side.
        _ => hash_joined(alg, &[ha1_bytes, input.nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// Compares two digests without an early exit, so timing says nothing about the prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1.
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc_input(algorithm: Algorithm) -> ResponseInput<'static> {
        ResponseInput {
            algorithm,
            sess: false,
            method: "GET",
            uri: "/dir/index.html",
            nonce: NONCE,
            cnonce: Some(CNONCE),
            nc: Some(1),
            qop: Some(Qop::Auth),
        }
    }

    #[test]
    fn rfc7616_sha256_vector() {
        let h = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            response(&h, &rfc_input(Algorithm::Sha256)).as_str(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc7616_md5_vector() {
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            response(&h, &rfc_input(Algorithm::Md5)).as_str(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc2617_md5_without_sess_matches_known_ha1() {
        // RFC 2617 §3.5: HA1 of Mufasa:testrealm@host.com:Circle Of Life.
        assert_eq!(
            ha1(
                Algorithm::Md5,
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life"
            ),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn algorithm_tokens_are_case_insensitive() {
        assert_eq!(
            Algorithm::parse("sha-256"),
            Some((Algorithm::Sha256, false))
        );
        assert_eq!(Algorithm::parse("MD5-SESS"), Some((Algorithm::Md5, true)));
        assert_eq!(Algorithm::parse("SHA-512-256"), None);
    }

    #[test]
    fn constant_time_eq_compares_whole_input() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
