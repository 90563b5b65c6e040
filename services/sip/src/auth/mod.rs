//! RFC 7616 HTTP digest authentication as used by SIP (RFC 3261 §22), sans-IO.
//!
//! `params` parses and formats the header values, `digest` holds the hash computations,
//! `nonce` mints and checks stateless nonces, `nonce_counts` remembers the nonce-counts seen,
//! `server` verifies requests, `client` answers challenges, `throttle` slows down sources that
//! keep failing.
mod client;
mod digest;
mod error;
mod nonce;
mod nonce_counts;
mod params;
mod server;
mod throttle;

pub use client::DigestClient;
pub use digest::{ha1, Algorithm, Qop};
pub(crate) use digest::constant_time_eq;
pub use error::AuthError;
pub use params::{parse_digest, Challenge, Credentials, DigestParams};
pub use server::{AuthOk, DigestConfig, DigestServer};
pub use throttle::{FailureThrottle, ThrottleConfig, Verdict};
