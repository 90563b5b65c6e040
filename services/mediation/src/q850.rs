//! SIP status <-> Q.850 cause, for the Reason header (RFC 3326) each side of the B2BUA sees:
//! the mapping of RFC 3398 §7.2.4 (ISUP to SIP) and §8.2.6.1 (SIP to ISUP), the common cases.
use holdfast_sip::message::{HeaderName, Headers};

/// The Q.850 cause for a SIP final status.
pub fn cause_for_status(status: u16) -> u8 {
    match status {
        200..=299 => 16,
        400 | 405 | 406 | 415 | 416 | 420 | 421 | 423 | 493 | 505 | 513 => 127,
        401 | 402 | 403 | 407 => 21,
        404 | 485 | 604 => 1,
        408 | 504 => 102,
        410 => 22,
        413 | 414 => 127,
        480 => 18,
        481 | 482 | 483 | 488 | 606 => 127,
        484 => 28,
        486 | 600 => 17,
        487 => 31,
        500 => 41,
        501 => 79,
        502 => 38,
        503 => 34,
        603 => 21,
        _ => 31,
    }
}

/// The SIP status for a Q.850 cause (RFC 3398 §7.2.4.1).
pub fn status_for_cause(cause: u8) -> u16 {
    match cause {
        1..=3 => 404,
        17 => 486,
        18 | 19 => 480,
        20 => 480,
        21 => 403,
        22 | 23 => 410,
        26 => 404,
        27 => 502,
        28 => 484,
        29 => 501,
        31 => 480,
        34 | 38 | 41 | 42 | 47 => 503,
        55 | 57 | 87 => 403,
        58 | 65 | 70 | 79 => 501,
        88 => 503,
        102 => 504,
        111 | 127 => 500,
        _ => 500,
    }
}

/// `Q.850;cause=N;text="..."`.
pub fn reason_value(cause: u8, text: &str) -> String {
    format!("Q.850;cause={cause};text=\"{}\"", text.replace(['"', '\\'], ""))
}

/// The Q.850 cause a message's Reason header carries, if any.
pub fn cause_in(headers: &Headers) -> Option<u8> {
    headers.get_all(&HeaderName::Reason).find_map(|v| {
        let mut parts = v.split(';');
        if !parts.next()?.trim().eq_ignore_ascii_case("Q.850") {
            return None;
        }
        parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("cause").then(|| v.trim().parse().ok()).flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways() {
        assert_eq!(cause_for_status(486), 17);
        assert_eq!(status_for_cause(17), 486);
        assert_eq!(cause_for_status(404), 1);
        assert_eq!(status_for_cause(1), 404);
        assert_eq!(cause_for_status(503), 34);
        assert_eq!(status_for_cause(34), 503);
        assert_eq!(cause_for_status(403), 21);
        assert_eq!(status_for_cause(21), 403);
        assert_eq!(cause_for_status(487), 31);
        assert_eq!(cause_for_status(200), 16);
    }

    #[test]
    fn reason_header_round_trip() {
        let mut h = Headers::default();
        h.add(HeaderName::Reason, "SIP;cause=200;text=\"x\"");
        h.add(HeaderName::Reason, reason_value(17, "User \"busy\""));
        assert_eq!(cause_in(&h), Some(17));
        assert_eq!(h.get_all(&HeaderName::Reason).nth(1), Some("Q.850;cause=17;text=\"User busy\""));
        assert_eq!(cause_in(&Headers::default()), None);
    }
}
