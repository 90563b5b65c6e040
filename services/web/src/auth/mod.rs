//! Admin login, sans-IO: sessions (random tokens, each with its CSRF token, bounded in number
//! and lifetime) and the login throttle (per source address, and overall so that Argon2 can
//! never be made to eat the box). Time comes in as `now`; the HTTP side is in `http`.
mod sessions;
mod throttle;

pub use sessions::Sessions;
pub use throttle::LoginThrottle;

/// 256 random bits, hex: unguessable session, CSRF and login-form tokens.
pub fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
