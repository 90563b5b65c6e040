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
    /// (rsip's own `FromStr` ignores case, so the names are matched here.)
    pub fn parse(token: &str) -> Method {
        use rsip::Method as M;
        let known = match token {
            "ACK" => M::Ack,
            "BYE" => M::Bye,
            "CANCEL" => M::Cancel,
            "INFO" => M::Info,
            "INVITE" => M::Invite,
            "MESSAGE" => M::Message,
            "NOTIFY" => M::Notify,
            "OPTIONS" => M::Options,
            "PRACK" => M::PRack,
            "PUBLISH" => M::Publish,
            "REFER" => M::Refer,
            "REGISTER" => M::Register,
            "SUBSCRIBE" => M::Subscribe,
            "UPDATE" => M::Update,
            _ => return Method::Extension(token.to_string()),
        };
        Method::Known(known)
    }

    /// The wire form, without the allocation rsip's `Display` makes.
    pub fn as_str(&self) -> &str {
        use rsip::Method as M;
        match self {
            Method::Known(M::Ack) => "ACK",
            Method::Known(M::Bye) => "BYE",
            Method::Known(M::Cancel) => "CANCEL",
            Method::Known(M::Info) => "INFO",
            Method::Known(M::Invite) => "INVITE",
            Method::Known(M::Message) => "MESSAGE",
            Method::Known(M::Notify) => "NOTIFY",
            Method::Known(M::Options) => "OPTIONS",
            Method::Known(M::PRack) => "PRACK",
            Method::Known(M::Publish) => "PUBLISH",
            Method::Known(M::Refer) => "REFER",
            Method::Known(M::Register) => "REGISTER",
            Method::Known(M::Subscribe) => "SUBSCRIBE",
            Method::Known(M::Update) => "UPDATE",
            Method::Extension(s) => s,
        }
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
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rsip_method_round_trips_and_case_matters() {
        for m in rsip::Method::all() {
            let ours = Method::parse(&m.to_string());
            assert_eq!(ours, Method::Known(m));
            assert_eq!(ours.as_str(), m.to_string());
        }
        assert_eq!(Method::parse("invite"), Method::Extension("invite".into()));
    }
}
