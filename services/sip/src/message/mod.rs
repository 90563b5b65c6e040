//! The SIP message model shared by every Holdfast service.
//!
//! rsip 0.4 is the message model the design asks for, but it cannot represent what real phones send
//! (extension methods, tel: URIs, IPv6 hosts, comma-joined header values) and it writes wrong
//! reason phrases. So the model here is ours; it reuses rsip's `Method` for the methods rsip knows
//! (see `method.rs`) and keeps header values as text, parsed on demand by the typed headers in
//! `via.rs`, `name_addr.rs` and `cseq.rs`.
mod cseq;
mod header;
mod method;
pub(crate) mod name_addr;
mod params;
mod reason;
#[cfg(any(test, feature = "sample"))]
pub mod sample;
pub(crate) mod syntax;
pub(crate) mod uri;
pub(crate) mod via;

pub use cseq::CSeq;
pub use header::{Header, HeaderName, Headers};
pub use method::Method;
pub use name_addr::NameAddr;
pub use params::Params;
pub use reason::reason_phrase;
pub use uri::{escape_user, ip_text, Host, SipUri, TelUri, Uri};
pub use via::Via;

/// A header value that could not be parsed into its typed form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {header} header: {why}")]
    Malformed { header: &'static str, why: String },
}

impl HeaderError {
    pub fn malformed(header: &'static str, why: impl Into<String>) -> Self {
        HeaderError::Malformed { header, why: why.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
}

impl Request {
    pub fn new(method: Method, uri: Uri) -> Self {
        Request { method, uri, headers: Headers::default(), body: Vec::new() }
    }

    /// A response to this request with the headers RFC 3261 §8.2.6.2 copies (Via, From, To,
    /// Call-ID, CSeq; Record-Route for 18x/2xx is the caller's business), and a To tag of ours
    /// when the request had none and the response is not a 100. That tag is derived from the
    /// request, as a stateless UAS must (§8.2.7): a retransmission gets the same tag, and no
    /// randomness is needed (a dialog's own tag is the core's, from its `Ids`).
    pub fn response(&self, status: u16) -> Response {
        let mut headers = Headers::default();
        for name in [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
            for h in self.headers.iter().filter(|h| h.name == name) {
                if h.name == HeaderName::To && status > 100 && !has_tag(&h.value) {
                    headers.push(Header::new(HeaderName::To, format!("{};tag={:016x}", h.value, self.derived_tag())));
                } else {
                    headers.push(h.clone());
                }
            }
        }
        Response { status, reason: reason_phrase(status).to_string(), headers, body: Vec::new() }
    }
}

impl Request {
    /// A tag that is a function of the request's identity (Call-ID, CSeq, From, top Via).
    fn derived_tag(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hash = std::hash::DefaultHasher::new();
        for name in [HeaderName::CallId, HeaderName::CSeq, HeaderName::From, HeaderName::Via] {
            self.headers.get(&name).hash(&mut hash);
        }
        hash.finish()
    }
}

/// Whether a To/From value carries a tag parameter (outside its <URI>).
fn has_tag(value: &str) -> bool {
    let params = value.rsplit_once('>').map_or(value, |(_, after)| after);
    params.split(';').skip(1).any(|p| p.trim().get(..4).is_some_and(|n| n.eq_ignore_ascii_case("tag=")))
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response { status, reason: reason_phrase(status).to_string(), headers: Headers::default(), body: Vec::new() }
    }
}

/// Typed access to the headers every transaction and dialog needs.
macro_rules! common_accessors {
    ($t:ty) => {
        impl $t {
            pub fn call_id(&self) -> Result<&str, HeaderError> {
                self.headers.get(&HeaderName::CallId).ok_or(HeaderError::Missing("Call-ID"))
            }
            pub fn cseq(&self) -> Result<CSeq, HeaderError> {
                CSeq::parse(self.headers.get(&HeaderName::CSeq).ok_or(HeaderError::Missing("CSeq"))?)
            }
            /// The topmost Via (the first value of the first Via header).
            pub fn top_via(&self) -> Result<Via, HeaderError> {
                Via::parse(self.headers.get(&HeaderName::Via).ok_or(HeaderError::Missing("Via"))?)
            }
            /// The topmost Via, checked but not copied out of the header.
            pub(crate) fn top_via_raw(&self) -> Result<via::RawVia<'_>, HeaderError> {
                via::RawVia::scan(self.headers.get(&HeaderName::Via).ok_or(HeaderError::Missing("Via"))?)
            }
            pub fn from_header(&self) -> Result<NameAddr, HeaderError> {
                NameAddr::parse(self.headers.get(&HeaderName::From).ok_or(HeaderError::Missing("From"))?)
            }
            pub fn to_header(&self) -> Result<NameAddr, HeaderError> {
                NameAddr::parse(self.headers.get(&HeaderName::To).ok_or(HeaderError::Missing("To"))?)
            }
            /// The From tag (`NameAddr::tag_of`).
            pub fn from_tag(&self) -> Result<Option<&str>, HeaderError> {
                NameAddr::tag_of(self.headers.get(&HeaderName::From).ok_or(HeaderError::Missing("From"))?)
            }
            /// The To tag (`NameAddr::tag_of`).
            pub fn to_tag(&self) -> Result<Option<&str>, HeaderError> {
                NameAddr::tag_of(self.headers.get(&HeaderName::To).ok_or(HeaderError::Missing("To"))?)
            }
        }
    };
}
common_accessors!(Request);
common_accessors!(Response);
