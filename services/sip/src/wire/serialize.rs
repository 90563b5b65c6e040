//! `Message` to bytes: canonical header names, one value per line, and a Content-Length that is
//! always the body's length (any Content-Length header in the model is ignored). One pre-sized
//! buffer, no formatting machinery per header.
//!
//! A CR, LF or NUL in the start line or a header would end the line early and let whoever chose
//! that text write headers of their own (header injection, e.g. a `%0D%0A` in a user part that
//! was decoded and then copied into a header): such a message is refused, never written.
use crate::message::syntax::breaks_line;
use crate::message::{HeaderName, Headers, Message, Request, Response};
use std::io::Write;

/// A message the serializer refuses: the named part holds a CR, LF or NUL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} holds a CR, LF or NUL: not written")]
pub struct Unwritable(pub String);

impl Message {
    pub fn to_bytes(&self) -> Result<Vec<u8>, Unwritable> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

impl Request {
    pub fn to_bytes(&self) -> Result<Vec<u8>, Unwritable> {
        let mut out = Vec::with_capacity(128 + headers_len(&self.headers) + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}", self.uri);
        if breaks_line(&out) {
            return Err(Unwritable("the request line".into()));
        }
        out.extend_from_slice(b" SIP/2.0\r\n");
        finish(out, &self.headers, &self.body)
    }
}

impl Response {
    pub fn to_bytes(&self) -> Result<Vec<u8>, Unwritable> {
        if breaks_line(self.reason.as_bytes()) {
            return Err(Unwritable("the reason phrase".into()));
        }
        let mut out = Vec::with_capacity(64 + self.reason.len() + headers_len(&self.headers) + self.body.len());
        out.extend_from_slice(b"SIP/2.0 ");
        push_decimal(&mut out, usize::from(self.status));
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        finish(out, &self.headers, &self.body)
    }
}

fn headers_len(headers: &Headers) -> usize {
    headers.iter().map(|h| h.name.as_str().len() + h.value.len() + 4).sum()
}

fn finish(mut out: Vec<u8>, headers: &Headers, body: &[u8]) -> Result<Vec<u8>, Unwritable> {
    for h in headers.iter().filter(|h| h.name != HeaderName::ContentLength) {
        if breaks_line(h.value.as_bytes()) || breaks_line(h.name.as_str().as_bytes()) {
            return Err(Unwritable(format!("the {} header", h.name)));
        }
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(&mut out, body.len());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use crate::message::{HeaderName, Message, Method, Request, Response, Uri};
    use crate::wire::{parse, Unwritable};

    #[test]
    fn canonical_names_reason_phrases_and_length() {
        let mut r = Response::new(486);
        r.headers.add(HeaderName::parse("v"), "SIP/2.0/UDP h;branch=z9hG4bK1");
        r.headers.add(HeaderName::ContentLength, "999");
        r.body = b"xyz".to_vec();
        let text = String::from_utf8(r.to_bytes().unwrap()).unwrap();
        assert_eq!(text, "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 3\r\n\r\nxyz");
    }

    #[test]
    fn request_round_trip() {
        let mut r = Request::new(Method::REGISTER, Uri::parse("sip:example.com").unwrap());
        for (n, v) in [
            ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
            ("Via", "SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK0"),
            ("From", "\"A, B\" <sip:alice@example.com>;tag=1"),
            ("To", "<sip:alice@example.com>"),
            ("Call-ID", "x@y"),
            ("CSeq", "1 REGISTER"),
            ("Contact", "<sip:alice@192.0.2.1>;expires=60"),
            ("Contact", "<sip:alice@192.0.2.2>"),
            ("X-Custom", "a, b ,c"),
        ] {
            r.headers.add(HeaderName::parse(n), v);
        }
        r.body = b"\0binary\r\n\r\nbody".to_vec();
        let m = Message::Request(r);
        assert_eq!(parse(&m.to_bytes().unwrap()).unwrap(), m);
    }

    #[test]
    fn cr_lf_or_nul_anywhere_in_the_head_is_refused() {
        let ok = || {
            let mut r = Request::new(Method::INVITE, Uri::parse("sip:bob@example.com").unwrap());
            r.headers.add(HeaderName::From, "<sip:alice@example.com>;tag=1");
            r
        };
        for evil in ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\0b"] {
            let mut r = ok();
            r.headers.add(HeaderName::parse("Subject"), evil);
            assert_eq!(r.to_bytes(), Err(Unwritable("the Subject header".into())), "{evil:?}");
            let mut r = ok();
            r.headers.add(HeaderName::Other(format!("X{evil}")), "v");
            assert!(r.to_bytes().is_err(), "name {evil:?}");
            let mut r = ok();
            r.uri = Uri::Other(format!("urn:{evil}"));
            assert_eq!(r.to_bytes(), Err(Unwritable("the request line".into())));
            let mut resp = Response::new(486);
            resp.reason = format!("Busy{evil}");
            assert_eq!(resp.to_bytes(), Err(Unwritable("the reason phrase".into())));
        }
        // A CR/LF decoded from a user part is escaped again when the URI is written.
        let mut r = ok();
        r.uri = Uri::parse("sip:bob%0D%0AX-Injected%3A%201@example.com").unwrap();
        let text = String::from_utf8(r.to_bytes().unwrap()).unwrap();
        assert!(text.starts_with("INVITE sip:bob%0D%0AX-Injected%3A%201@example.com SIP/2.0\r\n"), "{text}");
        // A NUL as a quoted-pair in a display name is legal (RFC 4475 intmeth); a bare one is not.
        let mut r = ok();
        r.headers.add(HeaderName::To, "\"NUL:\\\0\" <sip:bob@example.com>");
        assert!(r.to_bytes().is_ok());
        let mut r = ok();
        r.headers.add(HeaderName::To, "\"NUL:\\\\\0\" <sip:bob@example.com>");
        assert!(r.to_bytes().is_err(), "an escaped backslash, then a bare NUL");
        // The body is not a header: it may hold anything.
        let mut r = ok();
        r.body = b"\r\n\0".to_vec();
        assert!(r.to_bytes().is_ok());
    }
}
