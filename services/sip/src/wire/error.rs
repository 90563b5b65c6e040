//! What can be wrong with bytes offered as a SIP message, worded so that the answer can say it.
use crate::message::HeaderError;

/// A message the wire layer refused. `Display` gives the status's phrase and the fault, e.g.
/// "Bad Request: malformed Content-Length", which is also the reason phrase of the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("Bad Request: empty message")]
    Empty,
    #[error("Bad Request: malformed {0}")]
    StartLine(&'static str),
    /// The version of the start line, sanitized for echoing.
    #[error("Version Not Supported: {0}")]
    Version(String),
    #[error("Bad Request: malformed header line")]
    HeaderLine,
    #[error("Bad Request: {0}")]
    Header(HeaderError),
    #[error("Bad Request: more than one {0} header")]
    Duplicate(&'static str),
    #[error("Bad Request: malformed Content-Length")]
    ContentLength,
    #[error("Bad Request: body shorter than Content-Length")]
    Truncated,
    #[error("Bad Request: CSeq method does not match the request method")]
    CSeqMethod,
    #[error("Bad Request: Request-URI must not carry headers")]
    UriHeaders,
    #[error("Bad Request: missing Content-Length on a stream")]
    NoContentLength,
    #[error("Message Too Large: more than {0} bytes")]
    TooLarge(usize),
}

impl WireError {
    pub fn status(&self) -> u16 {
        match self {
            WireError::Version(_) => 505,
            WireError::TooLarge(_) => 513,
            _ => 400,
        }
    }

    /// The reason phrase of the answer: the standard phrase followed by the fault.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// Framing errors leave a stream without a known message boundary: the connection must go.
    pub fn breaks_framing(&self) -> bool {
        matches!(
            self,
            WireError::ContentLength
                | WireError::Duplicate("Content-Length")
                | WireError::NoContentLength
                | WireError::TooLarge(_)
        )
    }

    pub(crate) fn malformed(header: &'static str, why: &str) -> Self {
        WireError::Header(HeaderError::malformed(header, why))
    }

    /// Re-labels a typed-header error with the header it came from ("address"/"URI" are generic).
    pub(crate) fn in_header(header: &'static str, e: HeaderError) -> Self {
        match e {
            HeaderError::Malformed { why, .. } => WireError::Header(HeaderError::Malformed { header, why }),
            missing => WireError::Header(missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons() {
        assert_eq!(WireError::ContentLength.status(), 400);
        assert_eq!(WireError::ContentLength.reason(), "Bad Request: malformed Content-Length");
        let v = WireError::Version("SIP/7.0".into());
        assert_eq!(v.status(), 505);
        assert!(v.reason().starts_with(crate::message::reason_phrase(505)));
        assert_eq!(WireError::TooLarge(65536).status(), 513);
        assert_eq!(
            WireError::malformed("To", "whitespace inside <>").reason(),
            "Bad Request: malformed To header: whitespace inside <>"
        );
    }
}
