//! Checks of the headers every transaction and dialog relies on, made while parsing so that a
//! `Message` out of `wire::parse` can be trusted and a faulty one answered with the fault.
use super::error::WireError;
use crate::message::name_addr::RawNameAddr;
use crate::message::syntax::is_ws;
use crate::message::via::RawVia;
use crate::message::{CSeq, HeaderName};

/// What the checks remember across the headers of one message.
#[derive(Default)]
pub(crate) struct Seen {
    pub vias: usize,
    pub from: bool,
    pub to: bool,
    pub call_id: bool,
    pub cseq: Option<CSeq>,
    pub max_forwards: bool,
    pub content_length: Option<usize>,
}

impl Seen {
    /// Checks one (already split) header value. Content-Length is consumed here: the body is
    /// the truth and serialization writes it.
    pub(crate) fn check(&mut self, name: &HeaderName, value: &str) -> Result<(), WireError> {
        match name {
            HeaderName::Via => {
                RawVia::scan(value)?;
                self.vias += 1;
            }
            HeaderName::From => single(&mut self.from, "From").and_then(|_| address("From", value))?,
            HeaderName::To => single(&mut self.to, "To").and_then(|_| address("To", value))?,
            HeaderName::Contact if value == "*" => {}
            HeaderName::Contact => address("Contact", value)?,
            HeaderName::Route => address("Route", value)?,
            HeaderName::RecordRoute => address("Record-Route", value)?,
            HeaderName::Path => address("Path", value)?,
            HeaderName::CallId => {
                single(&mut self.call_id, "Call-ID")?;
                if value.is_empty() || value.bytes().any(|b| is_ws(b) || b.is_ascii_control()) {
                    return Err(WireError::malformed("Call-ID", "not a word"));
                }
            }
            HeaderName::CSeq => {
                if self.cseq.is_some() {
                    return Err(WireError::Duplicate("CSeq"));
                }
                self.cseq = Some(CSeq::parse(value)?);
            }
            HeaderName::MaxForwards => {
                single(&mut self.max_forwards, "Max-Forwards")?;
                if !matches!(number(value), Some(0..=255)) {
                    return Err(WireError::malformed("Max-Forwards", "not a number from 0 to 255"));
                }
            }
            HeaderName::ContentLength => {
                if self.content_length.is_some() {
                    return Err(WireError::Duplicate("Content-Length"));
                }
                self.content_length = Some(content_length(value)?);
            }
            HeaderName::Expires => delta_seconds("Expires", value)?,
            HeaderName::MinExpires => delta_seconds("Min-Expires", value)?,
            HeaderName::Date if !is_rfc1123_gmt(value) => {
                return Err(WireError::malformed("Date", "not an RFC 1123 date in GMT"));
            }
            _ => {}
        }
        Ok(())
    }

    /// What RFC 3261 §8.1.1 makes mandatory (Max-Forwards aside: many stacks omit it).
    pub(crate) fn check_mandatory(&self) -> Result<(), WireError> {
        let missing = |name| Err(WireError::Header(crate::message::HeaderError::Missing(name)));
        if self.vias == 0 {
            return missing("Via");
        }
        if !self.from {
            return missing("From");
        }
        if !self.to {
            return missing("To");
        }
        if !self.call_id {
            return missing("Call-ID");
        }
        if self.cseq.is_none() {
            return missing("CSeq");
        }
        Ok(())
    }
}

fn single(seen: &mut bool, name: &'static str) -> Result<(), WireError> {
    if std::mem::replace(seen, true) {
        return Err(WireError::Duplicate(name));
    }
    Ok(())
}

fn address(name: &'static str, value: &str) -> Result<(), WireError> {
    RawNameAddr::scan(value).map(drop).map_err(|e| WireError::in_header(name, e))
}

fn number(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

pub(crate) fn content_length(value: &str) -> Result<usize, WireError> {
    number(value).and_then(|n| usize::try_from(n).ok()).ok_or(WireError::ContentLength)
}

/// `delta-seconds`: RFC 3261 §20.19 bounds it by 2**32-1; anything bigger is a fault (RFC 4475
/// scalar02) rather than a silent clamp.
fn delta_seconds(name: &'static str, value: &str) -> Result<(), WireError> {
    match number(value) {
        Some(n) if n <= u64::from(u32::MAX) => Ok(()),
        _ => Err(WireError::malformed(name, "not a delta-seconds value")),
    }
}

/// `rfc1123-date`, which SIP restricts to GMT: `Sat, 13 Nov 2010 23:29:00 GMT`.
fn is_rfc1123_gmt(value: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let b = value.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() == 29
        && value.get(0..3).is_some_and(|d| DAYS.contains(&d))
        && value.get(3..5) == Some(", ")
        && digits(5..7)
        && b[7] == b' '
        && value.get(8..11).is_some_and(|m| MONTHS.contains(&m))
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && value.get(25..) == Some(" GMT")
}

impl From<crate::message::HeaderError> for WireError {
    fn from(e: crate::message::HeaderError) -> Self {
        WireError::Header(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert!(is_rfc1123_gmt("Sat, 15 Oct 2005 04:44:56 GMT"));
        assert!(!is_rfc1123_gmt("Fri, 01 Jan 2010 16:00:00 EST"));
        assert!(!is_rfc1123_gmt("Fri, 01 Jan 2010 16:00:00"));
        assert!(!is_rfc1123_gmt("Fri, 01 Jan 2010 16:00:00 GMTX"));
    }

    #[test]
    fn scalars() {
        let mut seen = Seen::default();
        assert!(seen.check(&HeaderName::MaxForwards, "0068").is_ok());
        assert_eq!(seen.check(&HeaderName::MaxForwards, "1"), Err(WireError::Duplicate("Max-Forwards")));
        let mut seen = Seen::default();
        assert!(seen.check(&HeaderName::MaxForwards, "300").is_err());
        assert_eq!(seen.check(&HeaderName::ContentLength, "-999"), Err(WireError::ContentLength));
        assert!(seen.check(&HeaderName::Expires, "4294967295").is_ok());
        assert!(seen.check(&HeaderName::Expires, "4294967296").is_err());
        assert!(seen.check(&HeaderName::Expires, &"1".repeat(100)).is_err());
        assert!(seen.check(&HeaderName::Contact, "*").is_ok());
        assert!(seen.check(&HeaderName::CallId, "a b").is_err());
    }
}
