//! The UA side: answer a digest challenge (SIP trunks, tests, benchmarks).
use super::digest::{ha1, response, ResponseInput};
use super::error::AuthError;
use super::params::{Challenge, Credentials};

pub struct DigestClient;

impl DigestClient {
    /// Of several challenge values (one per algorithm), the one to answer: SHA-256 before MD5,
    /// plain before `-sess`; `None` if none is a usable digest challenge.
    pub fn preferred_challenge<'a>(values: &[&'a str]) -> Option<&'a str> {
        values
            .iter()
            .filter_map(|v| Challenge::parse(v).ok().map(|c| (*v, c)))
            .min_by_key(|(_, c)| (c.algorithm.hex_len() == 32, c.sess))
            .map(|(v, _)| v)
    }

    /// The `Authorization` (or `Proxy-Authorization`) value answering `challenge`. `nc` is the
    /// number of requests this client has sent with this nonce, starting at 1.
    pub fn authorize(
        challenge: &str,
        method: &str,
        uri: &str,
        user: &str,
        password: &str,
        cnonce: &str,
        nc: u32,
    ) -> Result<String, AuthError> {
        let c = Challenge::parse(challenge)?;
        let user_ha1 = ha1(c.algorithm, user, &c.realm, password);
        // Without qop the server speaks RFC 2069: no cnonce, no nc.
        let (cnonce, nc) = match c.qop {
            Some(_) => (Some(cnonce), Some(nc)),
            None => (None, None),
        };
        let digest = response(
            &user_ha1,
            &ResponseInput {
                algorithm: c.algorithm,
                sess: c.sess,
                method,
                uri,
                nonce: &c.nonce,
                cnonce,
                nc,
                qop: c.qop,
            },
        );
        Ok(Credentials {
            username: user.to_owned(),
            realm: c.realm,
            nonce: c.nonce,
            uri: uri.to_owned(),
            response: digest.as_str().to_owned(),
            algorithm: c.algorithm,
            sess: c.sess,
            cnonce: cnonce.map(str::to_owned),
            nc,
            qop: c.qop,
            opaque: c.opaque,
        }
        .to_header_value())
    }
}
