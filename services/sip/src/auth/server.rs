//! The registrar side: issue challenges, verify `Authorization` values against stored HA1s.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::digest::{constant_time_eq, hash_joined, response, Algorithm, Qop, ResponseInput};
use super::error::AuthError;
use super::nonce::{NonceId, NonceMinter};
use super::nonce_counts::{NcVerdict, NonceCounts};
use super::params::{Challenge, Credentials};

#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub realm: String,
    pub nonce_lifetime: Duration,
    /// Keys the nonces; a new secret (e.g. after a restart) invalidates all issued nonces.
    pub secret: [u8; 32],
    /// Upper bound of nonces whose nonce-count is remembered.
    pub max_tracked_nonces: usize,
    /// Challenges offered, most preferred first (RFC 8760 §2.4). Clients that read only the
    /// first challenge (sipp 3.6, older phones) need MD5 first.
    pub algorithms: Vec<Algorithm>,
}

impl DigestConfig {
    /// 300 s nonces keyed by `secret` (the caller's: random at each start), a million tracked
    /// nonces (some 50 MB at most), SHA-256 offered before MD5 (RFC 8760 §2.4).
    pub fn new(realm: &str, secret: [u8; 32]) -> Self {
        DigestConfig {
            realm: realm.to_owned(),
            nonce_lifetime: Duration::from_secs(300),
            secret,
            max_tracked_nonces: 1 << 20,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }
}

/// A request that proved knowledge of the user's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOk {
    pub username: String,
    pub realm: String,
    pub algorithm: Algorithm,
    /// The digest-uri the client signed; the caller may compare it with the Request-URI.
    pub uri: String,
}

pub struct DigestServer {
    realm: String,
    lifetime: u64,
    minter: NonceMinter,
    opaque: String,
    serial: AtomicU64,
    counts: Mutex<NonceCounts>,
    algorithms: Vec<Algorithm>,
}

impl DigestServer {
    pub fn new(config: DigestConfig) -> Self {
        let lifetime = config.nonce_lifetime.as_secs().max(1);
        let opaque = hash_joined(Algorithm::Sha256, &[&config.secret, b"opaque"]);
        DigestServer {
            minter: NonceMinter::new(config.secret, &config.realm),
            opaque: opaque.as_str()[..32].to_owned(),
            realm: config.realm,
            lifetime,
            serial: AtomicU64::new(0),
            counts: Mutex::new(NonceCounts::new(lifetime, config.max_tracked_nonces)),
            algorithms: config.algorithms,
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// One `WWW-Authenticate` value per configured algorithm, in order, sharing one fresh nonce.
    pub fn challenge(&self, now: SystemTime, stale: bool) -> Vec<String> {
        self.challenge_to(now, stale, b"")
    }

    /// `challenge` with a nonce bound to `peer` (the address it is sent to, as bytes): only
    /// `verify_credentials_from` the same `peer` accepts it.
    pub fn challenge_to(&self, now: SystemTime, stale: bool, peer: &[u8]) -> Vec<String> {
        let id = NonceId {
            issued: unix_secs(now),
            serial: self.serial.fetch_add(1, Ordering::Relaxed),
        };
        let nonce = self.minter.mint(id, peer);
        self.algorithms
            .iter()
            .map(|&algorithm| {
                Challenge {
                    realm: self.realm.clone(),
                    nonce: nonce.clone(),
                    opaque: Some(self.opaque.clone()),
                    algorithm,
                    sess: false,
                    qop: Some(Qop::Auth),
                    stale,
                }
                .to_header_value()
            })
            .collect()
    }

    /// Checks an `Authorization` value for a request with `method`. `ha1_lookup(user, realm,
    /// algorithm)` returns the stored HA1 (lowercase hex) or `None` for an unknown user.
    ///
    /// The response is checked before the nonce's age, so `Stale` is only ever returned to a
    /// client that knows the password (RFC 7616 §3.3).
    pub fn verify<F, S>(
        &self,
        method: &str,
        authorization: &str,
        ha1_lookup: F,
        now: SystemTime,
    ) -> Result<AuthOk, AuthError>
    where
        F: FnOnce(&str, &str, Algorithm) -> Option<S>,
        S: AsRef<str>,
    {
        self.verify_credentials(method, Credentials::parse(authorization)?, ha1_lookup, now)
    }

    /// `verify` for credentials the caller has already parsed (to pick, among several
    /// Authorization headers, the one for this realm without parsing twice).
    pub fn verify_credentials<F, S>(
        &self,
        method: &str,
        creds: Credentials,
        ha1_lookup: F,
        now: SystemTime,
    ) -> Result<AuthOk, AuthError>
    where
        F: FnOnce(&str, &str, Algorithm) -> Option<S>,
        S: AsRef<str>,
    {
        self.verify_credentials_from(method, creds, ha1_lookup, now, b"")
    }

    /// Whether `nonce` is one of ours, issued to `peer` (see `challenge_to`), whatever its age.
    pub fn issued_to(&self, nonce: &str, peer: &[u8]) -> bool {
        self.minter.check(nonce, peer).is_some()
    }

    /// `verify_credentials` for credentials from `peer`: a nonce issued to another address is
    /// `BadNonce`, before any password is looked at.
    pub fn verify_credentials_from<F, S>(
        &self,
        method: &str,
        creds: Credentials,
        ha1_lookup: F,
        now: SystemTime,
        peer: &[u8],
    ) -> Result<AuthOk, AuthError>
    where
        F: FnOnce(&str, &str, Algorithm) -> Option<S>,
        S: AsRef<str>,
    {
        if creds.realm != self.realm {
            return Err(AuthError::RealmMismatch(creds.realm));
        }
        if !self.algorithms.contains(&creds.algorithm) {
            return Err(AuthError::UnsupportedAlgorithm(
                creds.algorithm.name().to_owned(),
            ));
        }
        // qop is what carries nc and cnonce; without it a replay cannot be detected.
        let (Some(Qop::Auth), Some(nc), Some(cnonce)) = (creds.qop, creds.nc, &creds.cnonce) else {
            return Err(AuthError::UnsupportedQop);
        };
        let id = self.minter.check(&creds.nonce, peer).ok_or(AuthError::BadNonce)?;
        if creds.opaque.as_ref().is_some_and(|o| *o != self.opaque) {
            return Err(AuthError::BadNonce);
        }
        let stored = ha1_lookup(&creds.username, &creds.realm, creds.algorithm)
            .ok_or(AuthError::UnknownUser)?;
        let stored = stored.as_ref();
        if stored.len() != creds.algorithm.hex_len() {
            log::warn!(
                "stored {} HA1 of {:?} has the wrong length",
                creds.algorithm.name(),
                creds.username
            );
            return Err(AuthError::BadCredentials);
        }
        let expected = response(
            stored,
            &ResponseInput {
                algorithm: creds.algorithm,
                sess: creds.sess,
                method,
                uri: &creds.uri,
                nonce: &creds.nonce,
                cnonce: Some(cnonce),
                nc: Some(nc),
                qop: Some(Qop::Auth),
            },
        );
        if !constant_time_eq(
            expected.as_bytes(),
            creds.response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(AuthError::BadCredentials);
        }
        let now = unix_secs(now);
        if now > id.issued.saturating_add(self.lifetime) {
            return Err(AuthError::Stale);
        }
        let verdict = self
            .counts
            .lock()
            // The table stays consistent even if a holder panicked: observe has no partial state.
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .observe(id, nc, now);
        match verdict {
            NcVerdict::Fresh => Ok(AuthOk {
                username: creds.username,
                realm: creds.realm,
                algorithm: creds.algorithm,
                uri: creds.uri,
            }),
            NcVerdict::Replay => Err(AuthError::Replay),
            NcVerdict::Forgotten => Err(AuthError::Stale),
        }
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
