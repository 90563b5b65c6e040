//! The Reason header (RFC 3326) with the Q.850 protocol: how the ISDN cause crosses to SIP and
//! back, so that a busy or unallocated number reached through mediation keeps its exact cause.

use holdfast_sip::message::{HeaderName, Headers};

/// `Q.850;cause=N`.
pub fn q850(cause: u8) -> String {
    format!("Q.850;cause={cause}")
}

/// The Q.850 cause of the first Reason value using that protocol.
pub fn q850_cause(headers: &Headers) -> Option<u8> {
    headers.get_all(&HeaderName::Reason).flat_map(|v| v.split(',')).find_map(|value| {
        let mut parts = value.split(';').map(str::trim);
        if !parts.next()?.eq_ignore_ascii_case("Q.850") {
            return None;
        }
        parts.find_map(|p| {
            let (name, v) = p.split_once('=')?;
            name.trim().eq_ignore_ascii_case("cause").then(|| v.trim().parse().ok()).flatten()
        })
    })
    .filter(|c: &u8| (1..=127).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> Headers {
        let mut h = Headers::default();
        for v in values {
            h.add(HeaderName::Reason, *v);
        }
        h
    }

    #[test]
    fn the_q850_value_is_found_among_others() {
        assert_eq!(q850_cause(&headers(&[&q850(17)])), Some(17));
        assert_eq!(q850_cause(&headers(&["SIP;cause=200;text=\"x\"", "q.850 ; Cause = 34 ;text=\"busy\""])), Some(34));
        assert_eq!(q850_cause(&headers(&["SIP;cause=487, Q.850;cause=16"])), Some(16));
    }

    #[test]
    fn absent_or_bogus_causes_are_none() {
        assert_eq!(q850_cause(&headers(&[])), None);
        assert_eq!(q850_cause(&headers(&["SIP;cause=486"])), None);
        assert_eq!(q850_cause(&headers(&["Q.850;cause=999"])), None);
        assert_eq!(q850_cause(&headers(&["Q.850;cause=0"])), None);
        assert_eq!(q850_cause(&headers(&["Q.850"])), None);
    }
}
