//! Header names (with RFC 3261 §7.3.3 compact forms) and the ordered header list.
use std::fmt;

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(, $compact:literal)? ; )*) => {
        /// A header name. Known names compare case-insensitively and by compact form; anything else
        /// is kept as `Other` with its spelling, and compares case-insensitively too (RFC 3261 §7.3.1).
        #[derive(Debug, Clone)]
        pub enum HeaderName {
            $( $variant, )*
            Other(String),
        }

        impl HeaderName {
            /// Parses a name as it appears on the wire (any case, compact forms expanded).
            pub fn parse(name: &str) -> HeaderName {
                $(
                    if name.eq_ignore_ascii_case($canon) $(|| name.eq_ignore_ascii_case($compact))? {
                        return HeaderName::$variant;
                    }
                )*
                HeaderName::Other(name.to_string())
            }

            /// The canonical long form, used when we serialize.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other(s) => s,
                }
            }
        }
    };
}

header_names! {
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AcceptContact => "Accept-Contact", "a";
    Allow => "Allow";
    AllowEvents => "Allow-Events", "u";
    Authorization => "Authorization";
    CallId => "Call-ID", "i";
    Contact => "Contact", "m";
    ContentDisposition => "Content-Disposition";
    ContentEncoding => "Content-Encoding", "e";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    CSeq => "CSeq";
    Date => "Date";
    Event => "Event", "o";
    Expires => "Expires";
    From => "From", "f";
    MaxForwards => "Max-Forwards";
    MinExpires => "Min-Expires";
    MinSe => "Min-SE";
    PAssertedIdentity => "P-Asserted-Identity";
    Path => "Path";
    Privacy => "Privacy";
    ProxyAuthenticate => "Proxy-Authenticate";
    ProxyAuthorization => "Proxy-Authorization";
    ProxyRequire => "Proxy-Require";
    Reason => "Reason";
    RecordRoute => "Record-Route";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    Require => "Require";
    Route => "Route";
    Server => "Server";
    SessionExpires => "Session-Expires", "x";
    Subject => "Subject", "s";
    Supported => "Supported", "k";
    Timestamp => "Timestamp";
    To => "To", "t";
    Unsupported => "Unsupported";
    UserAgent => "User-Agent";
    Via => "Via", "v";
    Warning => "Warning";
    WwwAuthenticate => "WWW-Authenticate";
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for HeaderName {}

impl std::hash::Hash for HeaderName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        if let HeaderName::Other(name) = self {
            for b in name.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HeaderName {
    /// Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1), which the wire layer
    /// splits into one `Header` per value. The auth headers are not lists: their commas separate
    /// parameters.
    pub fn is_list(&self) -> bool {
        matches!(
            self,
            HeaderName::Accept
                | HeaderName::AcceptEncoding
                | HeaderName::AcceptContact
                | HeaderName::Allow
                | HeaderName::AllowEvents
                | HeaderName::Contact
                | HeaderName::ContentEncoding
                | HeaderName::Path
                | HeaderName::ProxyRequire
                | HeaderName::Reason
                | HeaderName::RecordRoute
                | HeaderName::Require
                | HeaderName::Route
                | HeaderName::Supported
                | HeaderName::Unsupported
                | HeaderName::Via
                | HeaderName::Warning
        )
    }
}

/// One header line holding one value (list headers are split by the wire layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

impl Header {
    pub fn new(name: HeaderName, value: impl Into<String>) -> Self {
        Header { name, value: value.into() }
    }
}

/// Headers in wire order. Order matters for Via, Route, Record-Route and Path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn with_capacity(n: usize) -> Self {
        Headers(Vec::with_capacity(n))
    }

    pub fn push(&mut self, header: Header) {
        self.0.push(header);
    }

    pub fn add(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header::new(name, value));
    }

    /// Inserts before every existing header of the same name (a new top Via, Record-Route, ...).
    pub fn push_front(&mut self, header: Header) {
        let at = self.0.iter().position(|h| h.name == header.name).unwrap_or(self.0.len());
        self.0.insert(at, header);
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0.iter().find(|h| &h.name == name).map(|h| h.value.as_str())
    }

    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |h| &h.name == name).map(|h| h.value.as_str())
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    /// Replaces every value of `name` with one value, keeping the position of the first.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(at) => {
                self.0[at].value = value;
                let mut i = 0;
                self.0.retain(|h| {
                    i += 1;
                    i - 1 == at || h.name != name
                });
            }
            None => self.0.push(Header::new(name, value)),
        }
    }

    pub fn remove_all(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Removes and returns the first value of `name` (the top Via when a proxy forwards a response).
    pub fn remove_first(&mut self, name: &HeaderName) -> Option<Header> {
        let at = self.0.iter().position(|h| &h.name == name)?;
        Some(self.0.remove(at))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_case_insensitively_and_by_compact_form() {
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("cALL-iD"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("X-Custom"), HeaderName::parse("x-custom"));
        assert_ne!(HeaderName::parse("X-Custom"), HeaderName::parse("X-Other"));
        let mut headers = Headers::default();
        headers.add(HeaderName::parse("Identity"), "abc");
        assert_eq!(headers.get(&HeaderName::Other("identity".into())), Some("abc"));
        let set: std::collections::HashSet<_> = [HeaderName::parse("X-A"), HeaderName::parse("x-a")].into();
        assert_eq!(set.len(), 1);
    }
}
