//! The Reason header (RFC 3326) with the Q.850 protocol: how a call's cause crosses SIP, so a
//! busy or unallocated number reached through the appliance keeps its exact cause.
use holdfast_sip::message::{HeaderName, Headers};

/// Reason values looked at, at most: the header is the sender's to repeat.
const MAX_VALUES: usize = 8;

/// `Q.850;cause=N`, with `;text="..."` when a text is given (quotes and backslashes dropped,
/// so the quoted string stays one).
pub fn q850(cause: u8, text: Option<&str>) -> String {
    match text {
        Some(text) => format!("Q.850;cause={cause};text=\"{}\"", text.replace(['"', '\\'], "")),
        None => format!("Q.850;cause={cause}"),
    }
}

/// The cause of the first Reason value using the Q.850 protocol, among the header's values
/// (several headers, or one with comma-separated values). Only a Q.850 cause (1-127) counts.
pub fn q850_cause(headers: &Headers) -> Option<u8> {
    let values = headers.get_all(&HeaderName::Reason).flat_map(|v| v.split(',')).take(MAX_VALUES);
    values.filter_map(cause_of).next()
}

fn cause_of(value: &str) -> Option<u8> {
    let mut parts = value.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("Q.850") {
        return None;
    }
    let cause = parts.find_map(|p| {
        let (name, v) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("cause").then(|| v.trim().parse::<u8>().ok()).flatten()
    })?;
    (1..=127).contains(&cause).then_some(cause)
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
        assert_eq!(q850_cause(&headers(&[&q850(17, None)])), Some(17));
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
        let many = vec!["SIP;cause=200"; 20].join(", ") + ", Q.850;cause=17";
        assert_eq!(q850_cause(&headers(&[&many])), None, "only the first values are read");
    }

    #[test]
    fn the_text_is_one_quoted_string() {
        let mut h = Headers::default();
        h.add(HeaderName::Reason, "SIP;cause=200;text=\"x\"");
        h.add(HeaderName::Reason, q850(17, Some("User \"busy\"")));
        assert_eq!(q850_cause(&h), Some(17));
        assert_eq!(h.get_all(&HeaderName::Reason).nth(1), Some("Q.850;cause=17;text=\"User busy\""));
    }
}
