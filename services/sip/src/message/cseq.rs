//! `CSeq: 1*DIGIT LWS Method`.
use super::syntax::{is_token, take_until, trim_start_ws, trim_ws};
use super::{HeaderError, Method};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// RFC 3261 §8.1.1.5: less than 2**31.
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`; a number of 2**31 or more is refused (RFC 4475 scalar02).
    pub fn parse(value: &str) -> Result<Self, HeaderError> {
        let bad = |why: &str| HeaderError::malformed("CSeq", why);
        let (digits, rest) = take_until(trim_ws(value), |b| !b.is_ascii_digit());
        let seq: u32 = digits.parse().map_err(|_| bad("malformed sequence number"))?;
        if seq >= 1 << 31 {
            return Err(bad("sequence number too large"));
        }
        let method = trim_start_ws(rest);
        if method.len() == rest.len() || !is_token(method) {
            return Err(bad("malformed method"));
        }
        Ok(CSeq { seq, method: Method::parse(method) })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes() {
        let c = CSeq::parse("0009   INVITE").unwrap();
        assert_eq!(c, CSeq { seq: 9, method: Method::INVITE });
        assert_eq!(c.to_string(), "9 INVITE");
        assert_eq!(CSeq::parse("1 NEWMETHOD").unwrap().method, Method::Extension("NEWMETHOD".into()));
        for bad in ["", "INVITE", "1INVITE", "2147483648 INVITE", "36893488147419103232 REGISTER", "1 IN VITE"] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
    }
}
