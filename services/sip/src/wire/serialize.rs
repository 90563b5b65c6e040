//! `Message` to bytes: canonical header names, one value per line, and a Content-Length that is
//! always the body's length (any Content-Length header in the model is ignored). One pre-sized
//! buffer, no formatting machinery per header.
use crate::message::{HeaderName, Headers, Message, Request, Response};
use std::io::Write;

impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

impl Request {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + headers_len(&self.headers) + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}", self.uri);
        out.extend_from_slice(b" SIP/2.0\r\n");
        finish(out, &self.headers, &self.body)
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
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

fn finish(mut out: Vec<u8>, headers: &Headers, body: &[u8]) -> Vec<u8> {
    for h in headers.iter().filter(|h| h.name != HeaderName::ContentLength) {
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(&mut out, body.len());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
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
    use crate::wire::parse;

    #[test]
    fn canonical_names_reason_phrases_and_length() {
        let mut r = Response::new(486);
        r.headers.add(HeaderName::parse("v"), "SIP/2.0/UDP h;branch=z9hG4bK1");
        r.headers.add(HeaderName::ContentLength, "999");
        r.body = b"xyz".to_vec();
        let text = String::from_utf8(r.to_bytes()).unwrap();
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
        assert_eq!(parse(&m.to_bytes()).unwrap(), m);
    }
}
