//! Request methods. rsip's `Method` covers the standard methods but has no room for extension
//! methods (RFC 3261 §25.1 `extension-method = token`), which a server must still parse and answer
//! with 405 or 501; `Method::Extension` is that room.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Known(rsip::Method),
    Extension(String),
}

impl Method {
    pub const INVITE: Method = Method::Known(rsip::Method::Invite);
    pub const ACK: Method = Method::Known(rsip::Method::Ack);
    pub const BYE: Method = Method::Known(rsip::Method::Bye);
    pub const CANCEL: Method = Method::Known(rsip::Method::Cancel);
    pub const OPTIONS: Method = Method::Known(rsip::Method::Options);
    pub const REGISTER: Method = Method::Known(rsip::Method::Register);

    /// Method names are case-sensitive (RFC 3261 §7.1): `invite` is an extension method, not INVITE.
    pub fn parse(token: &str) -> Method {
        rsip::Method::all()
            .into_iter()
            .find(|m| m.to_string() == token)
            .map(Method::Known)
            .unwrap_or_else(|| Method::Extension(token.to_string()))
    }

    pub fn as_rsip(&self) -> Option<rsip::Method> {
        match self {
            Method::Known(m) => Some(*m),
            Method::Extension(_) => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // rsip prints PRack as "PRACK", which is the wire form.
            Method::Known(m) => write!(f, "{m}"),
            Method::Extension(s) => f.write_str(s),
        }
    }
}
