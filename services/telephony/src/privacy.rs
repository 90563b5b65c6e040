//! A withheld identity (RFC 3323 Privacy, RFC 3325 P-Asserted-Identity): how a request asks for
//! it, and the anonymous From that goes out instead of the caller's number. Inside our trust
//! domain (mediation, the gateway, the trunks) the number travels in P-Asserted-Identity; a
//! phone never gets it.
use holdfast_sip::message::{HeaderName, Request};

/// The user part of an anonymous From (RFC 3323 §4.1.1.3).
pub const ANONYMOUS: &str = "anonymous";

/// Whether the caller asked for its identity to be withheld: `Privacy: id`, `user` or `header`
/// (each hides the number in From), or an anonymous From.
pub fn withheld(request: &Request) -> bool {
    let asked = request
        .headers
        .get_all(&HeaderName::Privacy)
        .flat_map(|v| v.split(';'))
        .any(|p| matches!(p.trim().to_ascii_lowercase().as_str(), "id" | "user" | "header"));
    asked || request.from_header().is_ok_and(|f| f.uri.as_sip().and_then(|s| s.user.as_deref()) == Some(ANONYMOUS))
}

/// The From of a call whose caller is withheld or has no number.
pub fn anonymous_from(tag: &str) -> String {
    format!("\"Anonymous\" <sip:{ANONYMOUS}@anonymous.invalid>;tag={tag}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::message::{Method, Uri};

    fn invite(headers: &[(HeaderName, &str)]) -> Request {
        let mut r = Request::new(Method::INVITE, Uri::parse("sip:5551234567@192.0.2.1").unwrap());
        for (name, value) in headers {
            r.headers.add(name.clone(), *value);
        }
        r
    }

    #[test]
    fn privacy_id_user_header_or_an_anonymous_from_withhold_the_caller() {
        let from = (HeaderName::From, "<sip:3001@branch.example>;tag=a");
        assert!(!withheld(&invite(&[from.clone()])));
        assert!(!withheld(&invite(&[from.clone(), (HeaderName::Privacy, "none")])));
        for privacy in ["id", "ID", "user", "header; critical", "critical;id"] {
            assert!(withheld(&invite(&[from.clone(), (HeaderName::Privacy, privacy)])), "{privacy}");
        }
        assert!(withheld(&invite(&[(HeaderName::From, &anonymous_from("t"))])));
    }
}
