/// Why a digest exchange failed.
///
/// A server answers `Stale` with a fresh challenge carrying `stale=true`; `BadNonce` with a fresh
/// challenge (the client had no usable nonce, it is not a failed guess); `UnknownUser` and
/// `BadCredentials` with 401/403 and count as failures for `FailureThrottle`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed digest header: {0}")]
    Malformed(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("unsupported or missing qop")]
    UnsupportedQop,
    #[error("realm {0:?} is not ours")]
    RealmMismatch(String),
    #[error("nonce was not issued by us")]
    BadNonce,
    #[error("nonce expired")]
    Stale,
    #[error("nonce-count replayed or not increasing")]
    Replay,
    #[error("unknown user")]
    UnknownUser,
    #[error("wrong credentials")]
    BadCredentials,
}
